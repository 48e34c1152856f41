#include "pg/connect_params.hpp"

#include "core/c_handle.hpp"
#include "core/secrets.hpp"
#include "pg/hosts.hpp"

#include "core/error.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <regex>

namespace kachel::pg {

namespace {

/// libpq's parse errors quote pieces of the string, which may include a password: keep only
/// quoted fragments that look like keywords.
std::string safe_parse_error(std::string message) {
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
        message.pop_back();
    }
    static std::regex const quoted{R"re("([^"]*)")re"};
    std::string out;
    auto begin = std::sregex_iterator(message.begin(), message.end(), quoted);
    std::size_t last = 0;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
        auto const& m = *it;
        out += message.substr(last, static_cast<std::size_t>(m.position(0)) - last);
        bool const keyword_like =
            m[1].length() <= 32 && std::regex_match(m[1].str(), std::regex{"[A-Za-z_]*"});
        out += keyword_like ? m[0].str() : std::string{"\"...\""};
        last = static_cast<std::size_t>(m.position(0) + m.length(0));
    }
    out += message.substr(last);
    return out;
}

std::string home_directory() {
    char const* home = std::getenv("HOME");
    return home == nullptr ? std::string{"~"} : std::string{home};
}

/// The effective value of a TLS file keyword: string > override > environment > libpq default.
sourced_value effective_file(connect_params const& params, char const* keyword,
                             std::optional<sourced_value> const& override_value, char const* env_var,
                             char const* default_name) {
    if (auto v = params.keyword(keyword)) {
        return {*v, fmt::format("{} in the connection string ({})", keyword, params.origin)};
    }
    if (override_value) {
        return *override_value;
    }
    if (char const* env = std::getenv(env_var); env != nullptr && *env != '\0') {
        return {env, env_var};
    }
    return {fmt::format("{}/.postgresql/{}", home_directory(), default_name), "libpq's default path"};
}

} // namespace

void connect_params::set_keyword(std::string const& name, std::optional<std::string> value) {
    if (!value || value->empty()) {
        std::erase_if(keywords, [&](auto const& kv) { return kv.first == name; });
        return;
    }
    for (auto& [k, v] : keywords) {
        if (k == name) {
            v = std::move(*value);
            return;
        }
    }
    keywords.emplace_back(name, std::move(*value));
}

std::optional<std::string> connect_params::keyword(std::string_view name) const {
    for (auto const& [k, v] : keywords) {
        if (k == name) {
            return v;
        }
    }
    return std::nullopt;
}

std::string connect_params::label() const {
    auto const host = keyword("host").value_or("default");
    auto const port = keyword("port").value_or("default");
    auto const dbname = keyword("dbname").value_or("default");
    if (host.find(',') == std::string::npos && port.find(',') == std::string::npos) {
        return fmt::format("{}:{}/{}", host, port, dbname);
    }
    // Several hosts: "a:5432,b:5433/db" (one port may serve them all).
    auto const hosts = comma_list(host);
    auto const ports = comma_list(port);
    std::string out;
    for (std::size_t i = 0; i < std::max(hosts.size(), ports.size()); ++i) {
        out += fmt::format("{}{}:{}", i == 0 ? "" : ",", hosts[std::min(i, hosts.size() - 1)],
                           ports[std::min(i, ports.size() - 1)]);
    }
    return out + "/" + dbname;
}

std::string connect_params::redacted() const {
    std::string out;
    for (auto const& [k, v] : keywords) {
        if (is_secret_name(k)) {
            continue;
        }
        if (!out.empty()) {
            out += ' ';
        }
        out += fmt::format("{}={}", k, v);
    }
    return out;
}

std::string system_ca_bundle() {
    constexpr char const* debian_bundle = "/etc/ssl/certs/ca-certificates.crt";
    std::error_code ec;
    if (std::filesystem::exists(debian_bundle, ec)) {
        return debian_bundle;
    }
    return X509_get_default_cert_file();
}

connect_params make_connect_params(std::string const& conninfo, tls_overrides const& overrides,
                                   std::string origin) {
    connect_params params;
    params.origin = std::move(origin);
    char* err = nullptr;
    c_handle<PQconninfoOption, PQconninfoFree> opts{PQconninfoParse(conninfo.c_str(), &err)};
    if (!opts) {
        std::string const message = err == nullptr ? "out of memory" : safe_parse_error(err);
        if (err != nullptr) {
            PQfreemem(err);
        }
        throw config_error{
            fmt_error("Unable to parse the connection string from {}: {}", params.origin, message)};
    }
    for (auto* o = opts.get(); o->keyword != nullptr; ++o) {
        if (o->val != nullptr) {
            params.keywords.emplace_back(o->keyword, o->val);
        }
    }

    params.root_cert =
        effective_file(params, "sslrootcert", overrides.root_cert, "PGSSLROOTCERT", "root.crt");
    params.cert = effective_file(params, "sslcert", overrides.cert, "PGSSLCERT", "postgresql.crt");
    params.key = effective_file(params, "sslkey", overrides.key, "PGSSLKEY", "postgresql.key");
    if (auto v = params.keyword("sslmode")) {
        params.sslmode = {*v, fmt::format("sslmode in the connection string ({})", params.origin)};
    } else if (char const* env = std::getenv("PGSSLMODE"); env != nullptr && *env != '\0') {
        params.sslmode = {env, "PGSSLMODE"};
    } else {
        params.sslmode = {"prefer", "libpq's default"};
    }

    if (params.root_cert.value == "system") {
        // libpq 16 semantics: trust the system CAs and require full verification.
        if (params.sslmode.source != "libpq's default" && params.sslmode.value != "verify-full") {
            throw config_error{fmt_error("weak sslmode \"{}\" may not be used with sslrootcert=system (use "
                                         "\"verify-full\"); sslmode came from {}, sslrootcert=system from {}",
                                         params.sslmode.value, params.sslmode.source,
                                         params.root_cert.source)};
        }
        params.root_cert = {system_ca_bundle(), params.root_cert.source + ", sslrootcert=system"};
        params.sslmode = {"verify-full", "implied by sslrootcert=system"};
        params.set_keyword("sslmode", "verify-full");
        params.set_keyword("sslrootcert", params.root_cert.value);
    } else {
        if (!params.keyword("sslrootcert") && overrides.root_cert) {
            params.set_keyword("sslrootcert", overrides.root_cert->value);
        }
    }
    if (!params.keyword("sslcert") && overrides.cert) {
        params.set_keyword("sslcert", overrides.cert->value);
    }
    if (!params.keyword("sslkey") && overrides.key) {
        params.set_keyword("sslkey", overrides.key->value);
    }
    return params;
}

} // namespace kachel::pg
