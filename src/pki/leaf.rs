//! What a leaf certificate says: its subject, names and usages, for each certificate kubeadm
//! lays out (etcd server, peer and client; API server; API server's clients; front proxy;
//! admin).

use std::net::IpAddr;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType};
use time::Duration;

/// Leaf certificates are valid for a year, as kubeadm makes them.
pub const LEAF_VALIDITY: Duration = Duration::days(365);

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
    /// etcd peers are both ends of the same connection.
    ServerAndClient,
}

/// A leaf certificate to issue.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafSpec {
    pub common_name: String,
    /// The organization: the Kubernetes group, for client certificates.
    pub organization: Option<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub usage: Usage,
    pub validity: Duration,
}

/// A control-plane node as its certificates see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub hostname: String,
    pub ips: Vec<IpAddr>,
}

fn loopback() -> Vec<IpAddr> {
    vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
    ]
}

impl LeafSpec {
    fn new(common_name: &str, usage: Usage) -> Self {
        Self {
            common_name: common_name.to_string(),
            organization: None,
            dns_names: Vec::new(),
            ips: Vec::new(),
            usage,
            validity: LEAF_VALIDITY,
        }
    }

    /// etcd's serving certificate: the node's name and addresses, and localhost.
    pub fn etcd_server(node: &NodeIdentity) -> Self {
        Self {
            dns_names: vec![node.hostname.clone(), "localhost".to_string()],
            ips: [node.ips.clone(), loopback()].concat(),
            ..Self::new(&node.hostname, Usage::ServerAndClient)
        }
    }

    /// etcd's peer certificate: what the other members dial.
    pub fn etcd_peer(node: &NodeIdentity) -> Self {
        Self {
            dns_names: vec![node.hostname.clone(), "localhost".to_string()],
            ips: [node.ips.clone(), loopback()].concat(),
            ..Self::new(&node.hostname, Usage::ServerAndClient)
        }
    }

    /// A client of etcd (the API server, or etcd's own health checks).
    pub fn etcd_client(common_name: &str) -> Self {
        Self {
            organization: Some("system:masters".to_string()),
            ..Self::new(common_name, Usage::Client)
        }
    }

    /// The API server: every name clients use to reach it.
    pub fn api_server(names: &[String], service_ip: IpAddr, node: &NodeIdentity) -> Self {
        let mut dns_names = vec![
            node.hostname.clone(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
        ];
        dns_names.extend(names.iter().cloned());
        Self {
            dns_names,
            ips: [vec![service_ip], node.ips.clone()].concat(),
            ..Self::new("kube-apiserver", Usage::Server)
        }
    }

    /// A client certificate for `user` in `group`.
    pub fn client(user: &str, group: Option<&str>) -> Self {
        Self {
            organization: group.map(str::to_string),
            ..Self::new(user, Usage::Client)
        }
    }

    pub(super) fn params(&self) -> Result<CertificateParams, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, self.common_name.as_str());
        if let Some(organization) = &self.organization {
            params
                .distinguished_name
                .push(DnType::OrganizationName, organization.as_str());
        }
        for name in &self.dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName(name.as_str().try_into()?));
        }
        for ip in &self.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match self.usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        Ok(params)
    }
}
