#pragma once

#include "pg/connect_params.hpp"
#include "pg/connection.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace kachel::pg {

/// What an X.509 certificate says about itself.
struct certificate_info {
    std::string subject; ///< RFC 2253, e.g. "CN=localhost"
    std::string issuer;
    std::vector<std::string> subject_alt_names; ///< "DNS:localhost", "IP:127.0.0.1"
    std::chrono::system_clock::time_point not_after;

    /// Whole days from now until expiry (negative once expired).
    [[nodiscard]] long days_left() const;
    /// "subject CN=..., issuer CN=..., SAN DNS:a, expires 2027-01-31 (365 days)".
    [[nodiscard]] std::string describe() const;
};

/// The TLS side of an open connection.
struct tls_report {
    bool in_use = false;
    std::string protocol;
    std::string cipher;
    std::string sslmode;                        ///< effective, as libpq applied it
    std::vector<certificate_info> server_chain; ///< leaf first, as the server sent it
    std::optional<certificate_info> client;     ///< the certificate kachel presented
    bool chain_verified = false;                ///< against the root certificate file
    bool hostname_verified = false;             ///< verify-full only
    std::vector<certificate_info> trusted_cas;  ///< the root file's CAs, when the chain was verified
};

/// Inspects an established connection (reading the root certificate file of `params` once
/// when the chain was verified). Valid for connections that reached CONNECTION_OK.
[[nodiscard]] tls_report inspect_tls(connection const& conn, connect_params const& params);

/// Every certificate in a PEM file; empty if the file cannot be read.
[[nodiscard]] std::vector<certificate_info> read_certificates(std::string const& path);

/// True for `localhost`, 127.0.0.0/8, ::1 and unix-socket directories.
[[nodiscard]] bool is_local_host(std::string_view host) noexcept;

/// Certificates expiring within this many days are warned about.
inline constexpr long certificate_warning_days = 30;

/// Logs the negotiated TLS (or "no TLS"), each certificate with subject and expiry (the chain
/// at debug), warnings for certificates expiring within 30 days and for connections to a remote
/// host that can be read or intercepted.
void log_tls(tls_report const& report, connection const& conn, connect_params const& params,
             std::string_view pool_name);

} // namespace kachel::pg
