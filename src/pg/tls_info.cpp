#include "pg/tls_info.hpp"

#include "core/c_handle.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <libpq-fe.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>

#include <ctime>
#include <memory>

namespace kachel::pg {

namespace {

using bio_handle = c_handle<BIO, BIO_free>;

std::string name_text(X509_NAME const* name) {
    bio_handle bio{BIO_new(BIO_s_mem())};
    X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    auto const len = BIO_get_mem_data(bio.get(), &data);
    return std::string{data, static_cast<std::size_t>(len)};
}

std::vector<std::string> alt_names(X509* cert) {
    std::vector<std::string> out;
    c_handle<GENERAL_NAMES, GENERAL_NAMES_free> names{
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))};
    if (!names) {
        return out;
    }
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
        GENERAL_NAME const* gn = sk_GENERAL_NAME_value(names.get(), i);
        if (gn->type == GEN_DNS) {
            auto const* s = gn->d.dNSName;
            out.push_back("DNS:" + std::string{reinterpret_cast<char const*>(ASN1_STRING_get0_data(s)),
                                               static_cast<std::size_t>(ASN1_STRING_length(s))});
        } else if (gn->type == GEN_IPADD) {
            auto const* s = gn->d.iPAddress;
            char buf[INET6_ADDRSTRLEN] = {};
            int const family = ASN1_STRING_length(s) == 16 ? AF_INET6 : AF_INET;
            inet_ntop(family, ASN1_STRING_get0_data(s), buf, sizeof buf);
            out.push_back(std::string{"IP:"} + buf);
        }
    }
    return out;
}

certificate_info describe_certificate(X509* cert) {
    certificate_info info;
    info.subject = name_text(X509_get_subject_name(cert));
    info.issuer = name_text(X509_get_issuer_name(cert));
    info.subject_alt_names = alt_names(cert);
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
        info.not_after = std::chrono::system_clock::from_time_t(timegm(&tm));
    }
    return info;
}

std::string conninfo_value(PGconn* conn, std::string_view keyword) {
    c_handle<PQconninfoOption, PQconninfoFree> opts{PQconninfo(conn)};
    for (auto* o = opts.get(); o != nullptr && o->keyword != nullptr; ++o) {
        if (keyword == o->keyword && o->val != nullptr) {
            return o->val;
        }
    }
    return {};
}

void log_certificate(std::string_view role, certificate_info const& cert, std::string_view pool_name) {
    spdlog::info("{}: {} {}", pool_name, role, cert.describe());
    auto const days = cert.days_left();
    if (days < 0) {
        spdlog::warn("{}: the {} {} has expired", pool_name, role, cert.subject);
    } else if (days <= certificate_warning_days) {
        spdlog::warn("{}: the {} {} expires in {} days ({:%Y-%m-%d})", pool_name, role, cert.subject, days,
                     cert.not_after);
    }
}

} // namespace

long certificate_info::days_left() const {
    auto const left = not_after - std::chrono::system_clock::now();
    return static_cast<long>(std::chrono::floor<std::chrono::days>(left).count());
}

std::string certificate_info::describe() const {
    std::string out = fmt::format("subject {}, issuer {}", subject, issuer);
    if (!subject_alt_names.empty()) {
        out += fmt::format(", SAN {}", fmt::join(subject_alt_names, " "));
    }
    out += fmt::format(", expires {:%Y-%m-%d} ({} days)", not_after, days_left());
    return out;
}

tls_report inspect_tls(connection const& conn, connect_params const& params) {
    tls_report report;
    PGconn* c = conn.native_handle();
    report.sslmode = conninfo_value(c, "sslmode");
    report.in_use = PQsslInUse(c) != 0;
    if (!report.in_use) {
        return report;
    }
    char const* protocol = PQsslAttribute(c, "protocol");
    char const* cipher = PQsslAttribute(c, "cipher");
    report.protocol = protocol == nullptr ? "" : protocol;
    report.cipher = cipher == nullptr ? "" : cipher;
    auto* ssl = static_cast<SSL*>(PQsslStruct(c, "OpenSSL"));
    if (ssl == nullptr) {
        return report;
    }
    if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl)) {
        for (int i = 0; i < sk_X509_num(chain); ++i) {
            report.server_chain.push_back(describe_certificate(sk_X509_value(chain, i)));
        }
    }
    if (X509* own = SSL_get_certificate(ssl)) {
        report.client = describe_certificate(own);
    }
    // libpq asks OpenSSL to verify the peer only when it has a root file (verify-ca/full, or
    // require/prefer with the file present); the handshake fails if that check fails.
    report.chain_verified =
        (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0 && SSL_get_verify_result(ssl) == X509_V_OK;
    report.hostname_verified = report.chain_verified && report.sslmode == "verify-full";
    if (report.chain_verified) {
        report.trusted_cas = read_certificates(params.root_cert.value);
    }
    return report;
}

std::vector<certificate_info> read_certificates(std::string const& path) {
    std::vector<certificate_info> out;
    bio_handle bio{BIO_new_file(path.c_str(), "r")};
    if (!bio) {
        return out;
    }
    while (true) {
        c_handle<X509, X509_free> cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)};
        if (!cert) {
            break;
        }
        out.push_back(describe_certificate(cert.get()));
    }
    return out;
}

bool is_local_host(std::string_view host) noexcept {
    return host.empty() || host == "localhost" || host.starts_with("127.") || host == "::1" ||
           host.starts_with('/') || host.starts_with('@');
}

void log_tls(tls_report const& report, connection const& conn, connect_params const& params,
             std::string_view pool_name) {
    char const* host_c = PQhost(conn.native_handle());
    std::string_view const host = host_c == nullptr ? std::string_view{} : host_c;
    if (!report.in_use) {
        spdlog::info("{}: no TLS (sslmode {})", pool_name, report.sslmode);
    } else {
        spdlog::info("{}: TLS {} {} (sslmode {}; chain {}, hostname {})", pool_name, report.protocol,
                     report.cipher, report.sslmode, report.chain_verified ? "verified" : "not verified",
                     report.hostname_verified ? "verified" : "not verified");
        if (!report.server_chain.empty()) {
            log_certificate("server certificate", report.server_chain.front(), pool_name);
        }
        for (std::size_t i = 1; i < report.server_chain.size(); ++i) {
            spdlog::debug("{}: server chain [{}] {}", pool_name, i, report.server_chain[i].describe());
        }
        if (report.client) {
            log_certificate("client certificate", *report.client, pool_name);
        }
        if (report.chain_verified) {
            for (auto const& ca : report.trusted_cas) {
                log_certificate(fmt::format("trusted CA (from {})", params.root_cert.source), ca, pool_name);
            }
        }
    }
    bool const readable = !report.in_use;
    bool const interceptable = report.in_use && !report.chain_verified;
    if (!is_local_host(host) &&
        (readable || interceptable || report.sslmode == "allow" || report.sslmode == "prefer")) {
        spdlog::warn(
            "{}: the connection to {} uses sslmode {}{}: traffic can be read or intercepted; use "
            "sslmode=verify-full with the server's CA (--ca-root-file, PGSSLROOTCERT or sslrootcert)",
            pool_name, host, report.sslmode, report.in_use ? " without certificate verification" : "");
    }
}

} // namespace kachel::pg
