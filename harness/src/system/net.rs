//! The network backends a system can ask for between its nodes: a TCP proxy
//! on every directed link (the nodes are given the proxies' addresses as
//! their peers), or kernel rules between the nodes' own addresses.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use nemesis::net::proxy::ProxyNet;
use nemesis::net::Net;

use super::db::NodeInfo;
use super::SystemError;

/// A proxy on every directed link between `nodes`, seeded for its faults.
pub async fn proxy_for(nodes: &[NodeInfo], seed: u64) -> Result<ProxyNet, SystemError> {
    let addrs: BTreeMap<String, SocketAddr> = nodes
        .iter()
        .map(|n| (n.id.clone(), SocketAddr::from(([127, 0, 0, 1], n.port))))
        .collect();
    ProxyNet::start_seeded(&addrs, seed)
        .await
        .map_err(|e| SystemError::Net(format!("starting the network proxy: {e}")))
}

/// Kernel rules between the nodes' own addresses (the run is in a private
/// network namespace: see `faultline run --net netns`).
pub fn kernel_net(nodes: &[NodeInfo]) -> Result<Box<dyn Net>, SystemError> {
    #[cfg(target_os = "linux")]
    {
        let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
        let addrs = nemesis::net::netns::node_addresses(&ids)
            .and_then(nemesis::net::netns::NftNet::new)
            .map_err(|e| SystemError::Net(format!("the netns backend: {e}")))?;
        Ok(Box::new(addrs))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = nodes;
        Err(SystemError::Net("the netns backend needs Linux".into()))
    }
}

/// Where nodes run and what cuts links between them.
pub type PlacedNet = (Box<dyn crate::placement::Placement>, Box<dyn Net>);

/// Every node in a network namespace of its own (`nemesis::net::nodes`):
/// the placement that runs them there, and the backend whose partitions
/// are DROP rules between their addresses. Only inside the run's private
/// network namespace (`--net netns`).
pub fn node_namespaces(count: usize) -> Result<PlacedNet, SystemError> {
    #[cfg(target_os = "linux")]
    {
        let ids = super::db::node_ids(count);
        let net = nemesis::net::nodes::NodeNet::new(&ids)
            .map_err(|e| SystemError::Net(format!("per-node namespaces: {e}")))?;
        let placement = crate::placement::NodeNamespaces::new(&net);
        Ok((Box::new(placement), Box::new(net)))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = count;
        Err(SystemError::Net("per-node namespaces need Linux".into()))
    }
}
