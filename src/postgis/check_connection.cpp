#include "postgis/check_connection.hpp"

#include "core/error.hpp"
#include "pg/connection.hpp"
#include "pg/diagnosis.hpp"
#include "pg/tls_info.hpp"
#include "postgis/discovery.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

namespace kachel::postgis {

namespace asio = boost::asio;

asio::awaitable<connection_report> async_check_connection(asio::any_io_executor executor,
                                                          pg::connect_params const& params,
                                                          pg::pool_options const& options) {
    connection_report report;
    auto& out = report.text;
    out += fmt::format("connection: {} ({})\n", params.redacted(), params.origin);
    out += fmt::format("  sslmode: {} (from {})\n", params.sslmode.value, params.sslmode.source);
    std::unique_ptr<pg::connection> conn;
    std::string failure;
    try {
        conn = co_await pg::connection::async_connect(executor, params);
    } catch (database_error const& e) {
        failure = e.what();
    }
    if (!conn) {
        out += fmt::format("  result: FAILED\n  {}\n", failure);
        if (auto const hint = pg::connection_hint(failure, params); !hint.empty()) {
            out += fmt::format("  {}\n", hint);
        }
        co_return report;
    }
    PGconn* c = conn->native_handle();
    out += fmt::format("  server: {} as {}, database {}\n", conn->server_address(), PQuser(c), PQdb(c));
    try {
        auto const v = co_await async_check_versions(*conn);
        out += fmt::format("  versions: PostgreSQL {}, PostGIS {}\n", v.postgres_text, v.postgis_text);
    } catch (database_error const& e) {
        out += fmt::format("  versions: {}\n  result: FAILED\n", e.what());
        co_return report;
    }
    auto const app = co_await conn->async_exec("SELECT current_setting('application_name')");
    out += fmt::format("  application_name: {}\n", app.get(0, 0));
    if (!options.prepared_statements) {
        out += "  session settings: none (prepared_statements off: no session state)\n";
    } else {
        try {
            auto const effective = co_await pg::prepare_session(*conn, options);
            out += fmt::format("  session settings: {}\n", pg::describe(effective));
        } catch (database_error const& e) {
            out += fmt::format("  session settings: {}\n  result: FAILED\n", e.what());
            co_return report;
        }
    }
    auto const tls = pg::inspect_tls(*conn, params);
    if (!tls.in_use) {
        out += "  TLS: none (plaintext connection)\n";
    } else {
        out += fmt::format("  TLS: {}, {}\n", tls.protocol, tls.cipher);
        if (!tls.server_chain.empty()) {
            out += fmt::format("  server certificate: {}\n", tls.server_chain.front().describe());
        }
        out += fmt::format("  verified: chain {}, hostname {}\n",
                           tls.chain_verified ? fmt::format("yes (against {} from {})",
                                                            params.root_cert.value, params.root_cert.source)
                                              : std::string{"no"},
                           tls.hostname_verified ? "yes" : "no");
        out +=
            fmt::format("  client certificate: {}\n",
                        tls.client ? fmt::format("{} (from {})", tls.client->describe(), params.cert.source)
                                   : std::string{"none"});
    }
    auto warn_expiry = [&out](std::string_view role, pg::certificate_info const& cert) {
        if (cert.days_left() <= pg::certificate_warning_days) {
            out += fmt::format("  warning: the {} {} expires in {} days\n", role, cert.subject,
                               cert.days_left());
        }
    };
    if (!tls.server_chain.empty()) {
        warn_expiry("server certificate", tls.server_chain.front());
    }
    if (tls.client) {
        warn_expiry("client certificate", *tls.client);
    }
    if (tls.chain_verified) {
        for (auto const& ca : tls.trusted_cas) {
            warn_expiry("trusted CA", ca);
        }
    }
    out += "  result: OK\n";
    report.ok = true;
    co_return report;
}

} // namespace kachel::postgis
