//! A certificate authority: made once (self-signed, 10 years), or loaded from its PEM files,
//! and used to issue leaf certificates.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::leaf::LeafSpec;
use super::{PkiError, Secret};

/// CAs are valid for 10 years, as kubeadm makes them.
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// Certificates start 5 minutes in the past, so a node whose clock is slightly behind
/// accepts them (kubeadm does the same).
pub const BACKDATE: Duration = Duration::minutes(5);

/// A CA certificate and its private key.
#[derive(Debug, Clone)]
pub struct Authority {
    pub cert_pem: String,
    pub key: Secret,
}

/// A leaf certificate and its private key.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key: Secret,
}

fn generate(what: &str) -> Result<KeyPair, PkiError> {
    KeyPair::generate().map_err(|source| PkiError::Generate {
        what: what.to_string(),
        source,
    })
}

/// A serial number unique per certificate: a digest of the key and the time, 16 bytes with
/// the top bit clear (serials must be positive).
fn serial(key: &KeyPair, now: OffsetDateTime) -> SerialNumber {
    let mut digest = Sha256::new();
    digest.update(key.public_key_raw());
    digest.update(now.unix_timestamp_nanos().to_be_bytes());
    let mut bytes: Vec<u8> = digest.finalize()[..16].to_vec();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

impl Authority {
    /// A new self-signed CA named `common_name`.
    pub fn create(common_name: &str, now: OffsetDateTime) -> Result<Self, PkiError> {
        let failed = |source| PkiError::Generate {
            what: format!("the {common_name} CA"),
            source,
        };
        let key = generate(common_name)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(serial(&key, now));
        let cert = params.self_signed(&key).map_err(failed)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key: Secret::new(key.serialize_pem()),
        })
    }

    /// The certificate's subject and validity period.
    pub fn validity(&self) -> Result<(String, OffsetDateTime, OffsetDateTime), PkiError> {
        certificate_validity(&self.cert_pem)
    }

    /// Issues a leaf certificate for `spec`, with a new key.
    pub fn issue(&self, spec: &LeafSpec, now: OffsetDateTime) -> Result<Issued, PkiError> {
        let failed = |source| PkiError::Generate {
            what: format!("the certificate for {}", spec.common_name),
            source,
        };
        let ca_key = KeyPair::from_pem(self.key.expose()).map_err(failed)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key).map_err(failed)?;
        let key = generate(&spec.common_name)?;
        let mut params = spec.params().map_err(failed)?;
        params.not_before = now - BACKDATE;
        params.not_after = now + spec.validity;
        params.serial_number = Some(serial(&key, now));
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &issuer).map_err(failed)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key: Secret::new(key.serialize_pem()),
        })
    }
}

/// The subject and validity period of the PEM certificate `pem`.
pub fn certificate_validity(
    pem: &str,
) -> Result<(String, OffsetDateTime, OffsetDateTime), PkiError> {
    let unreadable = |detail: String| PkiError::Unreadable { detail };
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|error| unreadable(error.to_string()))?;
    let certificate = pem
        .parse_x509()
        .map_err(|error| unreadable(error.to_string()))?;
    let validity = certificate.validity();
    Ok((
        certificate.subject().to_string(),
        validity.not_before.to_datetime(),
        validity.not_after.to_datetime(),
    ))
}
