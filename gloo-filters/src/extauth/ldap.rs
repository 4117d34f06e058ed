//! Gloo's LDAP step (`ldap`, `ldapInternal`), feature `extauth-ldap`: HTTP basic credentials
//! checked by binding to the LDAP server as the user, then the user's groups read from its
//! entry.
//!
//! For each request, as Gloo documents it:
//!
//! 1. No `Authorization: Basic` credentials, or an empty password (which LDAP would take as an
//!    anonymous bind): `401`.
//! 2. Bind as `userDnTemplate` with `%s` replaced by the user name, after removing the
//!    characters that are special in DNs (`\ , # + < > ; " =`, NUL), so a user name cannot
//!    reach another entry. Invalid credentials: `401`.
//! 3. Unless `disableGroupChecking`: search the user entry (`base` scope, `searchFilter`,
//!    `(uid=*)` by default) for `membershipAttributeName` (`memberOf` by default, compared
//!    case-insensitively), bound as the user, or as the service account when
//!    `groupLookupSettings.checkGroupsWithServiceAccount` is set. One of its values must be
//!    one of `allowedGroups` (DNs compared ignoring ASCII case); otherwise, or when the entry
//!    is not found, `403` (so with no `allowedGroups`, everyone gets `403`, as in Gloo).
//! 4. Allowed: the user id is the user name.
//!
//! A server that cannot be reached, a service account that cannot bind, or any other LDAP
//! error answers `500` (Gloo documents `500` for a failed service account bind).
//!
//! # Differences from Gloo
//!
//! * `pool` is accepted and not used: each check opens its own connection(s) and closes them
//!   (a bound connection carries the user's identity, so it is not shared).
//! * Only plain `ldap://` (Gloo's `address` is `host:port`); `ldaps://` is refused.
//! * Connecting and each operation are bounded by the build options' call timeout (5 s by
//!   default); a timeout answers `500`.
//! * `401` answers carry no `WWW-Authenticate` challenge (Gloo documents none for LDAP).

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};

use super::basic::parse_basic;
use super::config;
use super::error::ConfigError;
use super::{Allowed, Authorize, BoxFuture, CheckRequest, Decision, Denied};

/// Gloo's default `membershipAttributeName`.
pub const DEFAULT_MEMBERSHIP_ATTRIBUTE: &str = "memberOf";
/// Gloo's default `searchFilter`.
pub const DEFAULT_SEARCH_FILTER: &str = "(uid=*)";

/// LDAP's `invalidCredentials` result code.
const INVALID_CREDENTIALS: u32 = 49;
/// LDAP's `noSuchObject` result code.
const NO_SUCH_OBJECT: u32 = 32;

/// The service account that reads group membership.
#[derive(Clone)]
struct ServiceAccount {
    dn: String,
    password: String,
}

/// Gloo's LDAP auth step; see the [module docs](self). Built from `ldap` / `ldapInternal` by
/// [`AuthConfig::from_config`](super::AuthConfig::from_config).
///
/// ```
/// use gloo_filters::extauth::config::ExtAuthConfig;
/// use gloo_filters::extauth::AuthConfig;
///
/// let config = AuthConfig::from_config(&ExtAuthConfig::from_json(r#"{
///     "authConfigRefName": "gloo-system.ldap",
///     "configs": [{"ldap": {
///         "address": "ldap.example:389",
///         "userDnTemplate": "uid=%s,ou=people,dc=solo,dc=io",
///         "allowedGroups": ["cn=managers,ou=groups,dc=solo,dc=io"]
///     }}]
/// }"#)?)?;
/// assert_eq!(config.id(), "gloo-system.ldap");
/// # Ok::<_, gloo_filters::extauth::ConfigError>(())
/// ```
pub struct LdapAuth {
    url: String,
    template: (String, String),
    attribute: String,
    allowed_groups: Vec<String>,
    search_filter: String,
    check_groups: bool,
    service_account: Option<ServiceAccount>,
    timeout: Duration,
}

impl fmt::Debug for LdapAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapAuth")
            .field("url", &self.url)
            .field("allowed_groups", &self.allowed_groups)
            .finish_non_exhaustive()
    }
}

impl LdapAuth {
    pub(crate) fn from_config(
        at: &str,
        config: &config::Ldap,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        if config.group_lookup_settings.is_some() {
            return Err(ConfigError::new(
                format!("{at}.groupLookupSettings"),
                "the service account's credentials must be resolved: send this config as `ldapInternal`",
            ));
        }
        Self::build(at, config, None, timeout)
    }

    pub(crate) fn from_internal(
        at: &str,
        config: &config::LdapInternal,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let service_account = match &config.group_lookup_settings {
            Some(account) if account.check_groups_with_service_account => {
                if account.username.is_empty() || account.password.is_empty() {
                    return Err(ConfigError::new(
                        format!("{at}.groupLookupSettings"),
                        "checkGroupsWithServiceAccount needs the account's username and password",
                    ));
                }
                Some(ServiceAccount {
                    dn: account.username.clone(),
                    password: account.password.clone(),
                })
            }
            _ => None,
        };
        Self::build(at, config, service_account, timeout)
    }

    fn build<G>(
        at: &str,
        c: &config::LdapConfig<G>,
        service_account: Option<ServiceAccount>,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let url = match c.address.as_str() {
            "" => return Err(ConfigError::new(format!("{at}.address"), "required")),
            a if a.starts_with("ldap://") => a.to_owned(),
            a if a.contains("://") => {
                return Err(ConfigError::new(
                    format!("{at}.address"),
                    format!("{a:?}: only plain ldap:// is supported by gloo-filters"),
                ))
            }
            a => format!("ldap://{a}"),
        };
        let template = match c.user_dn_template.split_once("%s") {
            Some((before, after)) if !after.contains("%s") => (before.to_owned(), after.to_owned()),
            _ => {
                return Err(ConfigError::new(
                    format!("{at}.userDnTemplate"),
                    format!("{:?} must contain `%s` exactly once", c.user_dn_template),
                ))
            }
        };
        Ok(Self {
            url,
            template,
            attribute: non_empty(&c.membership_attribute_name, DEFAULT_MEMBERSHIP_ATTRIBUTE),
            allowed_groups: c.allowed_groups.clone(),
            search_filter: non_empty(&c.search_filter, DEFAULT_SEARCH_FILTER),
            check_groups: !c.disable_group_checking,
            service_account,
            timeout,
        })
    }

    fn user_dn(&self, user: &str) -> String {
        let clean: String = user
            .chars()
            .filter(|c| {
                !matches!(
                    c,
                    '\\' | ',' | '#' | '+' | '<' | '>' | ';' | '"' | '=' | '\0'
                )
            })
            .collect();
        format!("{}{}{}", self.template.0, clean, self.template.1)
    }

    /// A connection to the server, bound as `dn`: `Ok(None)` when the credentials are wrong.
    async fn bind(&self, dn: &str, password: &str) -> Result<Option<ldap3::Ldap>, LdapError> {
        let settings = LdapConnSettings::new().set_conn_timeout(self.timeout);
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url).await?;
        ldap3::drive!(conn);
        ldap.with_timeout(self.timeout);
        let result = ldap.simple_bind(dn, password).await?;
        if result.rc == INVALID_CREDENTIALS {
            let _ = ldap.unbind().await;
            return Ok(None);
        }
        result.success()?;
        Ok(Some(ldap))
    }

    /// The user's groups as `ldap` (bound) can read them; `None` when the entry is not found.
    async fn groups(
        &self,
        ldap: &mut ldap3::Ldap,
        dn: &str,
    ) -> Result<Option<Vec<String>>, LdapError> {
        ldap.with_timeout(self.timeout);
        let result = ldap
            .search(
                dn,
                Scope::Base,
                &self.search_filter,
                vec![self.attribute.as_str()],
            )
            .await?;
        if result.1.rc == NO_SUCH_OBJECT {
            return Ok(None);
        }
        let (entries, _) = result.success()?;
        let Some(entry) = entries.into_iter().next() else {
            return Ok(None);
        };
        let entry = SearchEntry::construct(entry);
        Ok(Some(
            entry
                .attrs
                .into_iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(&self.attribute))
                .flat_map(|(_, values)| values)
                .collect(),
        ))
    }

    async fn check(&self, user: String, password: String) -> Result<Decision, LdapError> {
        let dn = self.user_dn(&user);
        let Some(mut ldap) = self.bind(&dn, &password).await? else {
            return Ok(Decision::Deny(Denied::status(StatusCode::UNAUTHORIZED)));
        };
        if !self.check_groups {
            let _ = ldap.unbind().await;
            return Ok(allowed(user));
        }
        let groups = match &self.service_account {
            None => {
                let groups = self.groups(&mut ldap, &dn).await;
                let _ = ldap.unbind().await;
                groups?
            }
            Some(account) => {
                let _ = ldap.unbind().await;
                let Some(mut service) = self.bind(&account.dn, &account.password).await? else {
                    tracing::warn!(url = %self.url, "the LDAP service account cannot bind");
                    return Ok(Decision::Deny(Denied::status(
                        StatusCode::INTERNAL_SERVER_ERROR,
                    )));
                };
                let groups = self.groups(&mut service, &dn).await;
                let _ = service.unbind().await;
                groups?
            }
        };
        let member = groups.unwrap_or_default().iter().any(|group| {
            self.allowed_groups
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(group))
        });
        Ok(if member {
            allowed(user)
        } else {
            Decision::Deny(Denied::status(StatusCode::FORBIDDEN))
        })
    }
}

fn non_empty(value: &str, default: &str) -> String {
    if value.is_empty() { default } else { value }.to_owned()
}

fn allowed(user: String) -> Decision {
    Decision::Allow(Allowed {
        user_id: Some(user),
        ..Allowed::default()
    })
}

impl Authorize for LdapAuth {
    fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let credentials = request
                .headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| parse_basic(v.as_bytes()));
            let Some((user, password)) =
                credentials.filter(|(u, p)| !u.is_empty() && !p.is_empty())
            else {
                return Decision::Deny(Denied::status(StatusCode::UNAUTHORIZED));
            };
            match self.check(user, password).await {
                Ok(decision) => decision,
                Err(error) => {
                    tracing::warn!(url = %self.url, %error, "LDAP check failed");
                    Decision::Deny(Denied::status(StatusCode::INTERNAL_SERVER_ERROR))
                }
            }
        })
    }
}
