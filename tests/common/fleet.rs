//! Test-bed hosts playing EC2 instances of the AWS API emulator, with the volumes attached to
//! them. Nothing can run a real instance or a real EBS volume here, so:
//!
//! - each host is given an instance the emulator runs ([`Fleet::launch`]): the metadata
//!   stand-in answers the host with that instance's id and zone, and the instance carries the
//!   tags its auto-scaling group would give it;
//! - a volume the emulator says is attached to a host's instance appears in that host as a
//!   directory, `/run/rafter-volumes/<volume id>` (`RAFTER_VOLUME_DIR` of the node scripts),
//!   placed there by `scripts/testbed.sh attach`. Its data lives on this machine under the
//!   test bed's `volumes/` directory, so it outlives the host, as a volume outlives its
//!   instance; a stopped host loses it with its mount namespace.
//!
//! What the emulator gets wrong about attachments (it moves an attached volume instead of
//! refusing, and never checks zones) the fault proxy the hosts call through corrects
//! (`VolumeInUse`, `InvalidVolume.ZoneMismatch`). Terminating an instance
//! ([`Fleet::terminate`]) detaches its volumes, as on EC2.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::imds::Imds;
use super::testbed::Testbed;

/// Where an attached volume appears in a host.
pub const VOLUME_DIR: &str = "/run/rafter-volumes";

pub struct Fleet {
    ec2: aws_sdk_ec2::Client,
    imds: Imds,
    cluster: String,
    image: String,
    /// Instance id -> the host playing it.
    hosts: Arc<Mutex<HashMap<String, String>>>,
    /// (volume, instance) pairs already placed in their host.
    placed: Arc<Mutex<BTreeSet<(String, String)>>>,
}

impl Fleet {
    /// A fleet of `cluster`'s instances; volumes follow their attachments from now on (a
    /// task polls the emulator every 250 ms).
    pub async fn start(ec2: aws_sdk_ec2::Client, imds: Imds, cluster: &str) -> Self {
        let images = ec2.describe_images().send().await.unwrap();
        let image = images.images()[0].image_id().unwrap().to_string();
        let fleet = Fleet {
            ec2,
            imds,
            cluster: cluster.to_string(),
            image,
            hosts: Arc::default(),
            placed: Arc::default(),
        };
        let (ec2, hosts, placed) = (fleet.ec2.clone(), fleet.hosts.clone(), fleet.placed.clone());
        tokio::spawn(async move {
            loop {
                follow_attachments(&ec2, &hosts, &placed).await;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        fleet
    }

    /// `host` (at `address`) becomes a new control-plane instance in `zone`; its id.
    pub async fn launch(&self, host: &str, address: &str, zone: &str) -> String {
        let tag = |key: &str, value: &str| {
            aws_sdk_ec2::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
        };
        let launched = self
            .ec2
            .run_instances()
            .image_id(&self.image)
            .min_count(1)
            .max_count(1)
            .placement(
                aws_sdk_ec2::types::Placement::builder()
                    .availability_zone(zone)
                    .build(),
            )
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                    .tags(tag("rafter.dev/cluster", &self.cluster))
                    .tags(tag("rafter.dev/role", "control-plane"))
                    .tags(tag("Name", host))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let id = launched.instances()[0].instance_id().unwrap().to_string();
        self.adopt(host, address, &id, zone);
        id
    }

    /// `host` (at `address`) plays `instance`, which the emulator launched in `zone` (for an
    /// auto-scaling group, say).
    pub fn adopt(&self, host: &str, address: &str, instance: &str, zone: &str) {
        self.imds.place(address, instance, zone);
        self.hosts
            .lock()
            .unwrap()
            .insert(instance.to_string(), host.to_string());
    }

    /// Instance id -> host, shared: for a hook that runs outside the test's task.
    pub fn hosts_handle(&self) -> Arc<Mutex<HashMap<String, String>>> {
        self.hosts.clone()
    }

    /// The host playing `instance`, if any.
    pub fn host_of(&self, instance: &str) -> Option<String> {
        self.hosts.lock().unwrap().get(instance).cloned()
    }

    /// The instance `host` plays, if any.
    pub fn instance_of(&self, host: &str) -> Option<String> {
        self.hosts
            .lock()
            .unwrap()
            .iter()
            .find(|(_, played_by)| played_by.as_str() == host)
            .map(|(id, _)| id.clone())
    }

    /// The instance `host` played is terminated: the emulator detaches its volumes.
    pub async fn terminate(&self, host: &str) {
        let id = self
            .instance_of(host)
            .unwrap_or_else(|| panic!("{host} plays no instance"));
        self.ec2
            .terminate_instances()
            .instance_ids(&id)
            .send()
            .await
            .unwrap();
        self.hosts.lock().unwrap().remove(&id);
    }

    /// Where the data of `volume` lives on this machine.
    pub fn volume_data(volume: &str) -> PathBuf {
        Testbed::open().dir.join("volumes").join(volume)
    }
}

/// Places every attached volume whose instance a host plays in that host, once.
async fn follow_attachments(
    ec2: &aws_sdk_ec2::Client,
    hosts: &Mutex<HashMap<String, String>>,
    placed: &Mutex<BTreeSet<(String, String)>>,
) {
    let Ok(described) = ec2.describe_volumes().send().await else {
        return;
    };
    for volume in described.volumes() {
        let volume_id = volume.volume_id().unwrap_or_default().to_string();
        for attachment in volume.attachments() {
            let instance = attachment.instance_id().unwrap_or_default().to_string();
            let key = (volume_id.clone(), instance.clone());
            let host = hosts.lock().unwrap().get(&instance).cloned();
            let Some(host) = host else { continue };
            if placed.lock().unwrap().contains(&key) {
                continue;
            }
            let data = Fleet::volume_data(&volume_id);
            std::fs::create_dir_all(&data).unwrap();
            let target = format!("{VOLUME_DIR}/{volume_id}");
            if Testbed::open().attach(&host, &data, &target) {
                placed.lock().unwrap().insert(key);
            }
        }
    }
}
