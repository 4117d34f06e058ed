//! Why a token was refused: Envoy's `JwtVerify::Status`, with its messages.

use std::fmt;

use http::StatusCode;

/// Why a request was refused (or why one token failed), with exactly the message Envoy 1.40's
/// `jwt_authn` filter sends as the body of its `401`/`403` answer
/// (`source/common/jwt/status.cc`).
///
/// Only the statuses this filter can produce are listed; more may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtStatus {
    /// No token in any of the provider's locations.
    JwtMissed,
    /// `nbf` is later than now plus the clock skew.
    JwtNotYetValid,
    /// `exp` is earlier than now minus the clock skew.
    JwtExpired,
    /// Not three non-empty dot-separated sections.
    JwtBadFormat,
    /// The header section is not base64url.
    JwtHeaderParseErrorBadBase64,
    /// The header section is not a JSON object.
    JwtHeaderParseErrorBadJson,
    /// `alg` is missing or not a string.
    JwtHeaderBadAlg,
    /// `alg` is not one Envoy implements (`none` among them).
    JwtHeaderNotImplementedAlg,
    /// `kid` is present but not a string.
    JwtHeaderBadKid,
    /// The payload section is not base64url.
    JwtPayloadParseErrorBadBase64,
    /// An `EdDSA` signature is not 64 bytes long.
    JwtEd25519SignatureWrongLength,
    /// The payload section is not a JSON object.
    JwtPayloadParseErrorBadJson,
    /// `iss` is present but not a string.
    JwtPayloadParseErrorIssNotString,
    /// `sub` is present but not a string.
    JwtPayloadParseErrorSubNotString,
    /// `iat` is present but not a number.
    JwtPayloadParseErrorIatNotInteger,
    /// `iat` is negative or too large.
    JwtPayloadParseErrorIatOutOfRange,
    /// `nbf` is present but not a number.
    JwtPayloadParseErrorNbfNotInteger,
    /// `nbf` is negative or too large.
    JwtPayloadParseErrorNbfOutOfRange,
    /// `exp` is present but not a number.
    JwtPayloadParseErrorExpNotInteger,
    /// `exp` is negative or too large.
    JwtPayloadParseErrorExpOutOfRange,
    /// `jti` is present but not a string.
    JwtPayloadParseErrorJtiNotString,
    /// `aud` is neither a string nor a list of strings.
    JwtPayloadParseErrorAudNotString,
    /// The signature section is not base64url.
    JwtSignatureParseErrorBadBase64,
    /// The token's `iss` matches no provider allowed here.
    JwtUnknownIssuer,
    /// None of the token's audiences is allowed (answered with `403`).
    JwtAudienceNotAllowed,
    /// The signature does not verify with any matching key (also: token too large).
    JwtVerificationFail,
    /// The provider's JWKS has no usable key.
    JwksNoValidKeys,
    /// No key in the JWKS matches the token's `kid` and `alg`.
    JwksKidAlgMismatch,
    /// The remote JWKS could not be fetched (or was not a valid JWKS).
    JwksFetchFail,
}

impl JwtStatus {
    /// Envoy's message for this status: the body of the refusal.
    pub fn as_str(self) -> &'static str {
        use JwtStatus::*;
        match self {
            JwtMissed => "Jwt is missing",
            JwtNotYetValid => "Jwt not yet valid",
            JwtExpired => "Jwt is expired",
            JwtBadFormat => {
                "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
            }
            JwtHeaderParseErrorBadBase64 => "Jwt header is an invalid Base64url encoded",
            JwtHeaderParseErrorBadJson => "Jwt header is an invalid JSON",
            JwtHeaderBadAlg => "Jwt header [alg] field is required and must be a string",
            JwtHeaderNotImplementedAlg => "Jwt header [alg] is not supported",
            JwtHeaderBadKid => "Jwt header [kid] field is not a string",
            JwtPayloadParseErrorBadBase64 => "Jwt payload is an invalid Base64url encoded",
            JwtEd25519SignatureWrongLength => "Jwt ED25519 signature is wrong length",
            JwtPayloadParseErrorBadJson => "Jwt payload is an invalid JSON",
            JwtPayloadParseErrorIssNotString => "Jwt payload [iss] field is not a string",
            JwtPayloadParseErrorSubNotString => "Jwt payload [sub] field is not a string",
            JwtPayloadParseErrorIatNotInteger => "Jwt payload [iat] field is not an integer",
            JwtPayloadParseErrorIatOutOfRange => {
                "Jwt payload [iat] field is not a positive 64 bit integer"
            }
            JwtPayloadParseErrorNbfNotInteger => "Jwt payload [nbf] field is not an integer",
            JwtPayloadParseErrorNbfOutOfRange => {
                "Jwt payload [nbf] field is not a positive 64 bit integer"
            }
            JwtPayloadParseErrorExpNotInteger => "Jwt payload [exp] field is not an integer",
            JwtPayloadParseErrorExpOutOfRange => {
                "Jwt payload [exp] field is not a positive 64 bit integer"
            }
            JwtPayloadParseErrorJtiNotString => "Jwt payload [jti] field is not a string",
            JwtPayloadParseErrorAudNotString => {
                "Jwt payload [aud] field is not a string or string list"
            }
            JwtSignatureParseErrorBadBase64 => "Jwt signature is an invalid Base64url encoded",
            JwtUnknownIssuer => "Jwt issuer is not configured",
            JwtAudienceNotAllowed => "Audiences in Jwt are not allowed",
            JwtVerificationFail => "Jwt verification fails",
            JwksNoValidKeys => "Jwks doesn't have any valid public key",
            JwksKidAlgMismatch => "Jwks doesn't have key to match kid or alg from Jwt",
            JwksFetchFail => "Jwks remote fetch is failed",
        }
    }

    /// The HTTP status of the refusal: `403 Forbidden` for
    /// [`JwtAudienceNotAllowed`](Self::JwtAudienceNotAllowed), `401 Unauthorized` for every
    /// other status (`Filter::onComplete` in Envoy's `jwt_authn/filter.cc`).
    pub fn http_status(self) -> StatusCode {
        match self {
            JwtStatus::JwtAudienceNotAllowed => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl fmt::Display for JwtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
