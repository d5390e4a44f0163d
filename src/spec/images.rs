//! Machine images a spec may name: an AMI id, or an alias rafter resolves at apply time.

/// A named image family: who publishes it and how its AMI names look.
pub struct ImageAlias {
    pub alias: &'static str,
    pub owner: &'static str,
    /// AMI name pattern; `{arch}` becomes `amd64` or `arm64`.
    pub name_pattern: &'static str,
}

pub const IMAGE_ALIASES: &[ImageAlias] = &[
    ImageAlias {
        alias: "debian-12",
        owner: "136693071363",
        name_pattern: "debian-12-{arch}-*",
    },
    ImageAlias {
        alias: "debian-13",
        owner: "136693071363",
        name_pattern: "debian-13-{arch}-*",
    },
    ImageAlias {
        alias: "ubuntu-24.04",
        owner: "099720109477",
        name_pattern: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-*",
    },
];

/// What an `image:` field means.
pub enum ImageChoice<'a> {
    AmiId(&'a str),
    Alias(&'static ImageAlias),
}

pub fn resolve_image(image: &str) -> Option<ImageChoice<'_>> {
    if let Some(id) = image.strip_prefix("ami-") {
        let valid = (8..=17).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        return valid.then_some(ImageChoice::AmiId(image));
    }
    IMAGE_ALIASES
        .iter()
        .find(|alias| alias.alias == image)
        .map(ImageChoice::Alias)
}

pub fn image_aliases() -> impl Iterator<Item = &'static str> {
    IMAGE_ALIASES.iter().map(|alias| alias.alias)
}

/// `arm64` for Graviton families (`t4g`, `m7g`, `c6gn`), else `amd64`.
pub fn architecture_of(instance_type: &str) -> &'static str {
    let family = instance_type.split('.').next().unwrap_or_default();
    let after_generation = family
        .trim_start_matches(|c: char| c.is_ascii_lowercase())
        .trim_start_matches(|c: char| c.is_ascii_digit());
    if after_generation.contains('g') {
        "arm64"
    } else {
        "amd64"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures() {
        for (instance_type, arch) in [
            ("t4g.small", "arm64"),
            ("m7gd.large", "arm64"),
            ("c6gn.xlarge", "arm64"),
            ("g5.xlarge", "amd64"),
            ("c7i.large", "amd64"),
            ("t3.medium", "amd64"),
        ] {
            assert_eq!(architecture_of(instance_type), arch, "{instance_type}");
        }
    }

    #[test]
    fn images() {
        assert!(matches!(
            resolve_image("ami-0abcdef1234567890"),
            Some(ImageChoice::AmiId(_))
        ));
        assert!(resolve_image("ami-XYZ").is_none());
        assert!(matches!(
            resolve_image("debian-12"),
            Some(ImageChoice::Alias(_))
        ));
        assert!(resolve_image("centos-7").is_none());
    }
}
