//! Calling AWS (feature `aws`): Signature Version 4, credentials and their sources, STS, and a
//! small client for the query (EC2, STS) and REST (Lambda) APIs. gloo-discovery's EC2 and
//! Lambda plugins and gloo's Lambda filter (`aws_lambda`) are built on it.
//!
//! Hand-written on `ring` (SHA-256, HMAC), hyper-util with rustls, and `quick-xml`, rather than
//! on the AWS SDK: the SDK's `aws-config` alone is over a hundred crates, and gloo needs three
//! API calls. [`sigv4`] is checked against AWS's Signature Version 4 test suite.
//!
//! - [`sigv4`]: signing a request ([`sigv4::sign`]), and each step of the algorithm.
//! - Credentials: [`Credentials`], the [`ProvideCredentials`] trait, and the standard sources:
//!   [`EnvironmentProvider`], [`ProfileProvider`] (static keys of shared profiles),
//!   [`WebIdentityProvider`] (EKS IRSA), [`ContainerProvider`], [`ImdsProvider`] (IMDSv2),
//!   all chained by [`default_provider`] and cached by [`CachingProvider`];
//!   [`AssumeRoleProvider`] assumes a role with other credentials.
//! - [`AwsClient`]: endpoints ([`Endpoints`], with the SDKs' `AWS_ENDPOINT_URL*` overrides),
//!   signed calls, query-protocol actions with XML answers ([`xml`]), errors ([`AwsError`],
//!   throttling included), over a pluggable [`HttpTransport`].
//!
//! ```
//! use std::time::SystemTime;
//! use gloo_filters::aws::sigv4::{sign, SigningSettings};
//! use gloo_filters::aws::Credentials;
//!
//! let mut request = http::Request::post("https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/echo/invocations")
//!     .body(())
//!     .unwrap();
//! let credentials = Credentials::new("AKID", "secret").with_session_token("token");
//! sign(&mut request, b"{}", &credentials, &SigningSettings::new("us-east-1", "lambda"), SystemTime::now()).unwrap();
//! assert!(request.headers()["authorization"].to_str().unwrap().starts_with("AWS4-HMAC-SHA256 Credential=AKID/"));
//! assert_eq!(request.headers()["x-amz-security-token"], "token");
//! ```

mod client;
mod credentials;
mod env;
mod imds;
pub mod sigv4;
mod sts;
mod time;
pub mod xml;

pub use client::{
    query_request, service_error, xml_answer, AwsClient, AwsError, AwsErrorKind, BoxFuture,
    Endpoints, HttpTransport, HyperTransport,
};
pub use credentials::{
    CachingProvider, ChainProvider, Credentials, CredentialsError, CredentialsFuture,
    EnvironmentProvider, ProfileProvider, ProvideCredentials, SharedCredentialsProvider,
};
pub use env::Env;
pub use imds::{
    default_provider, default_provider_from_process, ContainerProvider, ImdsProvider, IMDS_ENDPOINT,
};
pub use sts::{credentials_of, AssumeRoleProvider, StsClient, WebIdentityProvider, STS_VERSION};
