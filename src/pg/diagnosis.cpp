#include "pg/diagnosis.hpp"

#include <fmt/format.h>

#include <array>

namespace kachel::pg {

namespace {

bool contains(std::string_view text, std::string_view part) noexcept {
    return text.find(part) != std::string_view::npos;
}

std::string describe(sourced_value const& v) {
    return fmt::format("\"{}\" (from {})", v.value, v.source);
}

/// `server certificate for "localhost" (and 1 other name)` -> the quoted part and its suffix.
std::string certificate_names(std::string_view msg) {
    auto const start = msg.find("server certificate for ");
    auto const end = msg.find(" does not match");
    if (start == std::string_view::npos || end == std::string_view::npos || end <= start) {
        return "other names";
    }
    auto const from = start + std::string_view{"server certificate for "}.size();
    return std::string{msg.substr(from, end - from)};
}

} // namespace

bool is_transient_failure(std::string_view msg) noexcept {
    constexpr std::array<std::string_view, 8> transient{
        "Connection refused",
        "timeout expired",
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is in recovery mode",
        "Network is unreachable",
        "No route to host",
        "Is the server running locally and accepting connections on that socket?",
    };
    for (auto const part : transient) {
        if (contains(msg, part)) {
            return true;
        }
    }
    return false;
}

std::string_view failure_reason(std::string_view msg) noexcept {
    if (contains(msg, "Connection refused") || contains(msg, "accepting connections on that socket")) {
        return "refused";
    }
    if (contains(msg, "timeout expired")) {
        return "timeout";
    }
    if (contains(msg, "starting up") || contains(msg, "shutting down") || contains(msg, "recovery mode")) {
        return "starting_up";
    }
    if (contains(msg, "SSL") || contains(msg, "certificate") || contains(msg, "private key")) {
        return contains(msg, "certificate authentication failed") ? "authentication" : "tls";
    }
    if (contains(msg, "authentication failed") || contains(msg, "pg_hba.conf") || contains(msg, "password")) {
        return "authentication";
    }
    return "other";
}

std::string connection_hint(std::string_view msg, connect_params const& params) {
    if (contains(msg, "certificate verify failed")) {
        return fmt::format(
            "hint: certificate verification failed: check that the server certificate is signed by a "
            "CA in the root certificate file {}, that this is the right file and that it is readable",
            describe(params.root_cert));
    }
    if (contains(msg, "does not match host name")) {
        return fmt::format(
            "hint: hostname verification failed: the certificate names {}; connect using one of those "
            "names, or re-issue the certificate with a subjectAltName for this host "
            "(sslmode=verify-ca checks the chain but not the name)",
            certificate_names(msg));
    }
    if (contains(msg, "root certificate file")) {
        return fmt::format(
            "hint: the root certificate file {} cannot be used: create it, or point --ca-root-file, "
            "postgres.ssl_root_cert, PGSSLROOTCERT or sslrootcert at your CA file",
            describe(params.root_cert));
    }
    if (contains(msg, "has group or world access")) {
        return fmt::format(
            "hint: the private key {} is readable by others: run chmod 600 on it (0640 is allowed when "
            "root owns it) and make it readable by the user running kachel",
            describe(params.key));
    }
    if (contains(msg, "certificate present, but not private key")) {
        return fmt::format(
            "hint: the client certificate {} has no key {}: give the key with postgres.ssl_key, "
            "PGSSLKEY or sslkey",
            describe(params.cert), describe(params.key));
    }
    if (contains(msg, "could not load private key file") || contains(msg, "bad decrypt")) {
        return fmt::format(
            "hint: the private key {} could not be read: if it is encrypted, give its passphrase with "
            "sslpassword in the connection string",
            describe(params.key));
    }
    if (contains(msg, "connection requires a valid client certificate")) {
        return "hint: the server authenticates this user by client certificate (pg_hba.conf \"cert\"): give "
               "postgres.ssl_cert and postgres.ssl_key (or PGSSLCERT and PGSSLKEY, or sslcert and sslkey)";
    }
    if (contains(msg, "alert unknown ca")) {
        return fmt::format(
            "hint: the server does not trust the issuer of the client certificate {}: sign it with a CA "
            "listed in the server's ssl_ca_file",
            describe(params.cert));
    }
    if (contains(msg, "certificate authentication failed")) {
        return fmt::format(
            "hint: the common name (CN) of the client certificate {} must equal the database user "
            "(or be mapped to it in pg_ident.conf)",
            describe(params.cert));
    }
    if (contains(msg, "server does not support SSL")) {
        return fmt::format(
            "hint: sslmode={} (from {}) requires TLS, but the server has ssl=off, or a pooler in "
            "between does not speak TLS",
            params.sslmode.value, params.sslmode.source);
    }
    if (contains(msg, "Connection refused") || contains(msg, "accepting connections on that socket")) {
        return "hint: connection refused: is PostgreSQL running, listening on that address and port "
               "(listen_addresses, port), and does pg_hba.conf admit this host (hostssl for TLS)?";
    }
    if (contains(msg, "no pg_hba.conf entry")) {
        return fmt::format(
            "hint: pg_hba.conf has no line for this host, user and database with this encryption; "
            "a server that only has hostssl lines refuses plaintext (sslmode={} from {})",
            params.sslmode.value, params.sslmode.source);
    }
    if (contains(msg, "password authentication failed")) {
        return "hint: authentication failed: check the user name and the password (not shown), given in the "
               "connection string, PGPASSWORD or a PGPASSFILE";
    }
    if (contains(msg, "no password supplied")) {
        return "hint: the server asks for a password: give it in the connection string, PGPASSWORD or a "
               "PGPASSFILE";
    }
    if (contains(msg, "timeout expired")) {
        return "hint: the server did not answer in time (connect_timeout): check the network path and "
               "firewalls";
    }
    return {};
}

} // namespace kachel::pg
