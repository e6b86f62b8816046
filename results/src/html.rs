//! HTML with escaping built in: the one way the report pages, the campaign
//! page and the serve pages write markup.
//!
//! An [`Html`] grows only from:
//! - [`Html::tags`]: markup from the program's own string literals (a
//!   `&'static str`, so never text from a run or a store);
//! - [`Html::text`]: anything `Display`, always escaped
//!   ([`crate::markup::escape_into`]);
//! - [`Html::open`] and [`Html::element`]: a tag with escaped attribute
//!   values, an element with escaped text;
//! - [`Html::append`]: another `Html`, which grew the same way;
//! - [`Html::trusted`]: a fragment the program made and escaped itself (an
//!   SVG drawing): the one way in for markup that is not a literal, named
//!   so that every use says the caller vouches for it.
//!
//! It does not implement `fmt::Write`: `write!` into it would go around the
//! escaping.

use std::fmt::{self, Display, Write as _};

use crate::markup::escape_into;

/// A piece of HTML being written (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    /// Empty.
    pub fn new() -> Html {
        Html::default()
    }

    /// Empty, with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Html {
        Html(String::with_capacity(bytes))
    }

    /// Markup written in the program: `<tr><td>`, a page's CSS.
    pub fn tags(&mut self, markup: &'static str) -> &mut Html {
        self.0.push_str(markup);
        self
    }

    /// `text`, escaped.
    pub fn text(&mut self, text: impl Display) -> &mut Html {
        let _ = write!(Escaping(&mut self.0), "{text}");
        self
    }

    /// `<tag name="value" ...>`, each value escaped.
    pub fn open(
        &mut self,
        tag: &'static str,
        attributes: &[(&'static str, &dyn Display)],
    ) -> &mut Html {
        self.0.push('<');
        self.0.push_str(tag);
        for (name, value) in attributes {
            self.0.push(' ');
            self.0.push_str(name);
            self.0.push_str("=\"");
            self.text(value);
            self.0.push('"');
        }
        self.0.push('>');
        self
    }

    /// `</tag>`.
    pub fn close(&mut self, tag: &'static str) -> &mut Html {
        self.0.push_str("</");
        self.0.push_str(tag);
        self.0.push('>');
        self
    }

    /// `<tag>text</tag>`, the text escaped.
    pub fn element(&mut self, tag: &'static str, text: impl Display) -> &mut Html {
        self.open(tag, &[]).text(text).close(tag)
    }

    /// Another piece of HTML, as it is.
    pub fn append(&mut self, other: &Html) -> &mut Html {
        self.0.push_str(&other.0);
        self
    }

    /// A fragment this program made and escaped itself, as it is: an SVG
    /// drawing from [`crate::txn_svg`] or [`crate::linear_svg`].
    pub fn trusted(&mut self, fragment: &str) -> &mut Html {
        self.0.push_str(fragment);
        self
    }

    /// Nothing written yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The HTML written so far.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The HTML, as a string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Display for Html {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `fmt::Write` that escapes what is written through it.
struct Escaping<'s>(&'s mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attribute_values_are_escaped_and_tags_are_not() {
        let mut html = Html::new();
        html.tags("<p>")
            .text("a<b & \"c\"")
            .tags("</p>")
            .open("a", &[("href", &"?x=1&y=2"), ("title", &4.5)])
            .text(7)
            .close("a")
            .element("td", format_args!("{}<", 3));
        assert_eq!(
            html.as_str(),
            "<p>a&lt;b &amp; &quot;c&quot;</p><a href=\"?x=1&amp;y=2\" title=\"4.5\">7</a><td>3&lt;</td>"
        );
    }

    #[test]
    fn appended_and_trusted_fragments_stay_as_they_are() {
        let mut inner = Html::new();
        inner.element("b", "<x>");
        let mut html = Html::new();
        html.append(&inner).trusted("<svg><text>&lt;</text></svg>");
        assert_eq!(
            html.into_string(),
            "<b>&lt;x&gt;</b><svg><text>&lt;</text></svg>"
        );
    }
}
