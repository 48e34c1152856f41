#include "pg/diagnosis.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <vector>

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

bool is_transient_failure(std::string_view libpq_message) noexcept {
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
    return std::ranges::any_of(transient,
                               [&](std::string_view part) { return contains(libpq_message, part); });
}

bool answered_as_standby(std::string_view libpq_message) noexcept {
    return contains(libpq_message, "session is read-only") ||
           contains(libpq_message, "server is in hot standby mode");
}

std::string_view failure_reason(std::string_view libpq_message) noexcept {
    if (contains(libpq_message, "Connection refused") ||
        contains(libpq_message, "accepting connections on that socket")) {
        return "refused";
    }
    if (contains(libpq_message, "timeout expired")) {
        return "timeout";
    }
    if (contains(libpq_message, "starting up") || contains(libpq_message, "shutting down") ||
        contains(libpq_message, "recovery mode")) {
        return "starting_up";
    }
    if (contains(libpq_message, "SSL") || contains(libpq_message, "certificate") ||
        contains(libpq_message, "private key")) {
        return contains(libpq_message, "certificate authentication failed") ? "authentication" : "tls";
    }
    if (contains(libpq_message, "authentication failed") || contains(libpq_message, "pg_hba.conf") ||
        contains(libpq_message, "password")) {
        return "authentication";
    }
    return "other";
}

std::string connection_hint(std::string_view libpq_message, connect_params const& params) {
    if (contains(libpq_message, "certificate verify failed")) {
        return fmt::format(
            "hint: certificate verification failed: check that the server certificate is signed by a "
            "CA in the root certificate file {}, that this is the right file and that it is readable",
            describe(params.root_cert));
    }
    if (contains(libpq_message, "does not match host name")) {
        return fmt::format(
            "hint: hostname verification failed: the certificate names {}; connect using one of those "
            "names, or re-issue the certificate with a subjectAltName for this host "
            "(sslmode=verify-ca checks the chain but not the name)",
            certificate_names(libpq_message));
    }
    if (contains(libpq_message, "root certificate file")) {
        return fmt::format(
            "hint: the root certificate file {} cannot be used: create it, or point --ca-root-file, "
            "postgres.ssl_root_cert, PGSSLROOTCERT or sslrootcert at your CA file",
            describe(params.root_cert));
    }
    if (contains(libpq_message, "has group or world access")) {
        return fmt::format(
            "hint: the private key {} is readable by others: run chmod 600 on it (0640 is allowed when "
            "root owns it) and make it readable by the user running kachel",
            describe(params.key));
    }
    if (contains(libpq_message, "certificate present, but not private key")) {
        return fmt::format(
            "hint: the client certificate {} has no key {}: give the key with postgres.ssl_key, "
            "PGSSLKEY or sslkey",
            describe(params.cert), describe(params.key));
    }
    if (contains(libpq_message, "could not load private key file") ||
        contains(libpq_message, "bad decrypt")) {
        return fmt::format(
            "hint: the private key {} could not be read: if it is encrypted, give its passphrase with "
            "sslpassword in the connection string",
            describe(params.key));
    }
    if (contains(libpq_message, "connection requires a valid client certificate")) {
        return "hint: the server authenticates this user by client certificate (pg_hba.conf \"cert\"): give "
               "postgres.ssl_cert and postgres.ssl_key (or PGSSLCERT and PGSSLKEY, or sslcert and sslkey)";
    }
    if (contains(libpq_message, "alert unknown ca")) {
        return fmt::format(
            "hint: the server does not trust the issuer of the client certificate {}: sign it with a CA "
            "listed in the server's ssl_ca_file",
            describe(params.cert));
    }
    if (contains(libpq_message, "certificate authentication failed")) {
        return fmt::format(
            "hint: the common name (CN) of the client certificate {} must equal the database user "
            "(or be mapped to it in pg_ident.conf)",
            describe(params.cert));
    }
    if (contains(libpq_message, "server does not support SSL")) {
        return fmt::format(
            "hint: sslmode={} (from {}) requires TLS, but the server has ssl=off, or a pooler in "
            "between does not speak TLS",
            params.sslmode.value, params.sslmode.source);
    }
    if (contains(libpq_message, "Connection refused") ||
        contains(libpq_message, "accepting connections on that socket")) {
        return "hint: connection refused: is PostgreSQL running, listening on that address and port "
               "(listen_addresses, port), and does pg_hba.conf admit this host (hostssl for TLS)?";
    }
    if (contains(libpq_message, "no pg_hba.conf entry")) {
        return fmt::format(
            "hint: pg_hba.conf has no line for this host, user and database with this encryption; "
            "a server that only has hostssl lines refuses plaintext (sslmode={} from {})",
            params.sslmode.value, params.sslmode.source);
    }
    if (contains(libpq_message, "password authentication failed")) {
        return "hint: authentication failed: check the user name and the password (not shown), given in the "
               "connection string, PGPASSWORD or a PGPASSFILE";
    }
    if (contains(libpq_message, "no password supplied")) {
        return "hint: the server asks for a password: give it in the connection string, PGPASSWORD or a "
               "PGPASSFILE";
    }
    if (contains(libpq_message, "timeout expired")) {
        return "hint: the server did not answer in time (connect_timeout): check the network path and "
               "firewalls";
    }
    if (answered_as_standby(libpq_message)) {
        return "hint: this host is a standby: discovery and LISTEN need the primary, so name it among the "
               "hosts (or promote a standby); tile reads go to the standbys";
    }
    return {};
}

std::string connection_hints(std::string_view libpq_message, connect_params const& params) {
    // libpq reports each host it tried in turn, each starting `connection to server at "`.
    constexpr std::string_view start = "connection to server at \"";
    std::vector<std::string_view> parts;
    for (auto at = libpq_message.find(start); at != std::string_view::npos;) {
        auto const next = libpq_message.find(start, at + start.size());
        parts.push_back(libpq_message.substr(at, next == std::string_view::npos ? next : next - at));
        at = next;
    }
    if (parts.size() < 2) {
        return connection_hint(libpq_message, params);
    }
    std::vector<std::string> hints;
    std::string out;
    for (auto const part : parts) {
        auto hint = connection_hint(part, params);
        if (hint.empty() || std::find(hints.begin(), hints.end(), hint) != hints.end()) {
            continue;
        }
        // `connection to server at "db2" (10.0.0.2), port 5432 failed: ...` names the host.
        auto const name_end = part.find(" failed:");
        auto const host = part.substr(start.size() - 1,
                                      name_end == std::string_view::npos ? 0 : name_end - start.size() + 1);
        out += fmt::format("{}{} (for {})", out.empty() ? "" : "\n", hint, host);
        hints.push_back(std::move(hint));
    }
    if (hints.size() == 1) {
        return hints.front(); // the same for every host
    }
    return out;
}

} // namespace kachel::pg
