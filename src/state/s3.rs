//! A state store in S3: one object per key, server-side encrypted, with conditional writes
//! (`If-None-Match: *`, `If-Match`) for the lock and state generations.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, ServerSideEncryption};

use super::{Precondition, StateError, StateStore, Versioned, check_key};

pub struct S3Store {
    client: Client,
    bucket: String,
    /// Key prefix without leading or trailing `/` (may be empty).
    prefix: String,
}

impl S3Store {
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    /// A store configured from the standard AWS chain (env, profiles, SSO, IMDS).
    /// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` point it elsewhere (path-style addressing is
    /// used then, as S3-compatible servers and emulators expect).
    ///
    /// The bucket may live in another region than the environment names (or than
    /// `us-east-1`, when it names none): S3 then refuses every request (`301
    /// PermanentRedirect`, or `400 AuthorizationHeaderMalformed`). One `HeadBucket` asks
    /// where it is (S3 answers with `x-amz-bucket-region`, even on those errors), and the
    /// client is made for that region.
    pub async fn from_environment(bucket: &str, prefix: &str) -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let mut builder = aws_sdk_s3::config::Builder::from(&config);
        if config.region().is_none() {
            builder = builder.region(aws_sdk_s3::config::Region::new("us-east-1"));
        }
        let custom_endpoint = config.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|value| !value.is_empty());
        if custom_endpoint {
            builder = builder.force_path_style(true);
        }
        let client = Client::from_conf(builder.clone().build());
        let configured = client.config().region().map(|region| region.to_string());
        let client = match bucket_region(&client, bucket).await {
            Some(region) if Some(&region) != configured.as_ref() => Client::from_conf(
                builder
                    .region(aws_sdk_s3::config::Region::new(region))
                    .build(),
            ),
            _ => client,
        };
        Self::new(client, bucket, prefix)
    }

    fn object_key(&self, key: &str) -> Result<String, StateError> {
        check_key(key)?;
        Ok(if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        })
    }

    fn error<E>(&self, operation: &'static str, key: &str, error: SdkError<E>) -> StateError
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        StateError::S3 {
            operation,
            bucket: self.bucket.clone(),
            key: key.to_string(),
            source: Box::new(S3Failure::from_sdk(&error, &self.bucket)),
        }
    }
}

/// What S3 (or the way to it) answered, in words: its code and message, and what to do about
/// the common ones; never the SDK's debug rendering of the error.
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
pub struct S3Failure {
    text: String,
}

impl S3Failure {
    fn from_sdk<E>(error: &SdkError<E>, bucket: &str) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
    {
        let text = match (error.code(), error.message()) {
            (Some(code), message) => {
                let advice = match code {
                    "NoSuchBucket" => format!(
                        "; create the bucket {bucket}, or point --state (RAFTER_STATE) at one \
                         that exists"
                    ),
                    "AccessDenied"
                    | "Forbidden"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch" => format!(
                        "; check the AWS credentials in use, and that they may read and write \
                         s3://{bucket}"
                    ),
                    "PermanentRedirect" | "AuthorizationHeaderMalformed" => {
                        "; the bucket is in another region: set AWS_REGION to it".to_string()
                    }
                    _ => String::new(),
                };
                format!(
                    "S3 answered {code}: {}{advice}",
                    message.unwrap_or("(no message)")
                )
            }
            (None, _) => {
                // No answer from S3: the network, the endpoint or the credentials chain.
                let mut parts = vec![error.to_string()];
                let mut source = std::error::Error::source(error);
                while let Some(cause) = source {
                    let part = cause.to_string();
                    if !parts.iter().any(|seen| seen.contains(&part)) {
                        parts.push(part);
                    }
                    source = cause.source();
                }
                parts.join(": ")
            }
        };
        Self { text }
    }
}

/// The region S3 says `bucket` is in, from `HeadBucket`'s `x-amz-bucket-region` (sent with
/// its answer and with its refusals alike); `None` when S3 could not be asked.
async fn bucket_region(client: &Client, bucket: &str) -> Option<String> {
    match client.head_bucket().bucket(bucket).send().await {
        Ok(answer) => answer.bucket_region().map(str::to_string),
        Err(error) => error
            .raw_response()
            .and_then(|response| response.headers().get("x-amz-bucket-region"))
            .map(str::to_string),
    }
    .filter(|region| !region.is_empty())
}

/// True for S3's answer to a failed `If-Match` / `If-None-Match`.
fn is_precondition_failure<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16());
    matches!(status, Some(412 | 409))
        || matches!(
            error.code(),
            Some("PreconditionFailed" | "ConditionalRequestConflict")
        )
}

impl StateStore for S3Store {
    fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self
            .read_versioned(key)
            .await?
            .map(|versioned| versioned.data))
    }

    async fn write(&self, key: &str, data: &[u8]) -> Result<(), StateError> {
        let object_key = self.object_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .body(ByteStream::from(data.to_vec()))
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(|error| self.error("PutObject", &object_key, error))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        let object_prefix = if prefix.is_empty() {
            if self.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", self.prefix)
            }
        } else {
            self.object_key(prefix)?
        };
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&object_prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| self.error("ListObjectsV2", &object_prefix, error))?;
            for object in page.contents() {
                if let Some(key) = object
                    .key()
                    .and_then(|key| key.strip_prefix(strip.as_str()))
                {
                    keys.push(key.to_string());
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StateError> {
        // A path prefix, not a string prefix: `a.example.com` must not take
        // `a.example.com.au/…` with it.
        let inside = format!("{prefix}/");
        let keys: Vec<String> = self
            .list(prefix)
            .await?
            .into_iter()
            .filter(|key| key == prefix || key.starts_with(&inside))
            .collect();
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|key| self.object_key(key))
                .map(|object_key| {
                    object_key.and_then(|object_key| {
                        ObjectIdentifier::builder()
                            .key(object_key)
                            .build()
                            .map_err(|error| StateError::S3 {
                                operation: "DeleteObjects",
                                bucket: self.bucket.clone(),
                                key: prefix.to_string(),
                                source: Box::new(error),
                            })
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|error| StateError::S3 {
                    operation: "DeleteObjects",
                    bucket: self.bucket.clone(),
                    key: prefix.to_string(),
                    source: Box::new(error),
                })?;
            self.client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|error| self.error("DeleteObjects", prefix, error))?;
        }
        Ok(())
    }

    async fn read_versioned(&self, key: &str) -> Result<Option<Versioned>, StateError> {
        let object_key = self.object_key(key)?;
        let response = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .send()
            .await
        {
            Ok(response) => response,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key()) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(self.error("GetObject", &object_key, error)),
        };
        let version = response.e_tag().unwrap_or_default().to_string();
        let data = response
            .body
            .collect()
            .await
            .map_err(|error| StateError::S3 {
                operation: "GetObject",
                bucket: self.bucket.clone(),
                key: object_key.clone(),
                source: Box::new(error),
            })?;
        Ok(Some(Versioned {
            data: data.into_bytes().to_vec(),
            version,
        }))
    }

    async fn write_if(
        &self,
        key: &str,
        data: &[u8],
        precondition: Precondition,
    ) -> Result<String, StateError> {
        let object_key = self.object_key(key)?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .body(ByteStream::from(data.to_vec()))
            .server_side_encryption(ServerSideEncryption::Aes256);
        let request = match &precondition {
            Precondition::Absent => request.if_none_match("*"),
            Precondition::Version(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(output) => Ok(output.e_tag().unwrap_or_default().to_string()),
            // The S3 client resends a request whose answer was lost; if the first one landed,
            // the resend meets its own object and is refused. An object holding exactly
            // these bytes is this write's outcome (whoever wrote it, the state it describes
            // is the one asked for), so it is taken as written. Callers that must see a
            // second create-only write refused (the lock probe) write other bytes.
            Err(error) if is_precondition_failure(&error) => {
                match self.read_versioned(key).await? {
                    Some(landed) if landed.data == data => Ok(landed.version),
                    _ => Err(StateError::PreconditionFailed {
                        store: self.url(),
                        key: key.to_string(),
                    }),
                }
            }
            Err(error) => Err(self.error("PutObject", &object_key, error)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StateError> {
        let object_key = self.object_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .send()
            .await
            .map_err(|error| self.error("DeleteObject", &object_key, error))?;
        Ok(())
    }
}
