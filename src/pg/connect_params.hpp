#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kachel::pg {

/// A setting's value and where it came from ("--ca-root-file", "PGSSLROOTCERT", ...), so a
/// diagnosis can name the channel to fix.
struct sourced_value {
    std::string value;
    std::string source;
};

/// TLS files given through channels other than the connection string and libpq's environment
/// variables, already in precedence order (`--ca-root-file` beats the config key).
struct tls_overrides {
    std::optional<sourced_value> root_cert;
    std::optional<sourced_value> cert;
    std::optional<sourced_value> key;
};

/// Everything libpq needs to open one connection, plus where each TLS file came from.
struct connect_params {
    /// Explicit libpq keywords, passed as they are (libpq reads its environment variables for
    /// the rest). May hold a password: never log them, use redacted().
    std::vector<std::pair<std::string, std::string>> keywords;
    /// Sent as `fallback_application_name`, so a user-given application_name wins.
    std::string application_name = "kachel";
    /// The effective files and sslmode, for logs and hints (sslmode "prefer" when unset anywhere).
    sourced_value root_cert;
    sourced_value cert;
    sourced_value key;
    sourced_value sslmode;
    /// Where the connection string came from ("command line", "DATABASE_URL", "config postgres[1]").
    std::string origin;
    /// The role each host of the `host` list is configured with (a config file's `hosts`:
    /// "primary", "standby" or "" for none) and where it was given. Empty when the connection
    /// string names the hosts: libpq's lists carry no roles.
    std::vector<sourced_value> host_roles;

    /// The value of an explicit keyword, if present.
    [[nodiscard]] std::optional<std::string> keyword(std::string_view name) const;
    /// Sets an explicit keyword (in its place when present); nullopt or "" removes it.
    void set_keyword(std::string const& name, std::optional<std::string> value);

    /// "host:port/dbname" from the explicit keywords (libpq defaults shown as "default"), for
    /// metric labels and logs; never secret.
    [[nodiscard]] std::string label() const;

    /// `key=value` text of the explicit keywords without password/sslpassword.
    [[nodiscard]] std::string redacted() const;
};

/// The system CA bundle used for `sslrootcert=system` (libpq 16 semantics on libpq 15).
[[nodiscard]] std::string system_ca_bundle();

/// Parses a connection string (URL or key=value) with libpq and applies the other channels with
/// the precedence of postgres-tls.md section 1: a keyword in the string, then `overrides`, then
/// libpq's environment variables, then libpq's defaults. `sslrootcert=system` (from any channel)
/// becomes the system bundle and sslmode verify-full.
/// \throws config_error when libpq cannot parse the string (the message never shows a password)
///         or when sslrootcert=system meets a weaker sslmode.
[[nodiscard]] connect_params make_connect_params(std::string const& conninfo, tls_overrides const& overrides,
                                                 std::string origin);

} // namespace kachel::pg
