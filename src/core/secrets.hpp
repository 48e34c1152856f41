#pragma once

#include <string>
#include <string_view>

namespace kachel {

// The one place that decides what is secret, for logs, errors, saved configs and the access log.

/// True for names whose values are secrets: libpq's `password` and `sslpassword`, and query keys
/// such as `token`, `key`, `api_key`, `access_token`, `secret`, `signature`, `auth`, `jwt`
/// (compared ignoring case).
[[nodiscard]] bool is_secret_name(std::string_view name) noexcept;

/// A connection string without its secrets: the password of a URL's userinfo, secret URL
/// parameters and secret `key=value` keywords are removed, so libpq takes the password from
/// PGPASSWORD or the password file instead. Anything else is kept as written.
[[nodiscard]] std::string without_password(std::string_view connection_string);

/// A URL query string with the values of secret keys replaced by `***`.
[[nodiscard]] std::string redact_query(std::string_view query);

} // namespace kachel
