#include "app/change_listener.hpp"

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "pg/connection.hpp"
#include "pg/hosts.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace kachel::app {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view notifications_metric = "kachel_change_notifications_total";
constexpr std::string_view notifications_help = "Change notifications received, by connection and outcome.";

void count_notification(std::string const& connection, std::string_view outcome) {
    global_metrics().count(notifications_metric, notifications_help,
                           {{"connection", connection}, {"outcome", std::string{outcome}}});
}

void count_source_drop(std::string const& source, std::string_view reason) {
    global_metrics().count("kachel_change_source_drops_total",
                           "Sources whose cached tiles were all dropped, by source and reason.",
                           {{"source", source}, {"reason", std::string{reason}}});
}

/// A payload as the log shows it: at most 200 characters.
std::string shown(std::string_view payload) {
    return payload.size() <= 200 ? std::string{payload} : fmt::format("{}...", payload.substr(0, 200));
}

} // namespace

followed_tables followed_tables_of(std::span<postgis::table_spec const> tables) {
    followed_tables out;
    for (auto const& t : tables) {
        if (!t.notify_changes) {
            continue;
        }
        auto const& g = t.layout.geometry;
        double const margin = g.extent > 0 ? static_cast<double>(g.buffer) / g.extent : 0.0;
        out[{t.table.schema, t.table.table}].push_back(followed_source{t.id, margin});
    }
    return out;
}

struct change_listener::state {
    explicit state(asio::any_io_executor ex) : executor(std::move(ex)) {}
    asio::any_io_executor executor;
    pg::connect_params params;
    asio::cancellation_signal cancel;
    bool stopped = false;
};

change_listener::change_listener(asio::any_io_executor executor, pg::connect_params params,
                                 tiles::tile_cache* cache, followed_tables tables)
    : m_state(std::make_shared<state>(std::move(executor))), m_tables(std::move(tables)), m_cache(cache),
      m_label(params.label()) {
    m_state->params = std::move(params);
}

std::chrono::milliseconds change_listener::backoff(unsigned attempt) noexcept {
    auto const ms = std::chrono::milliseconds{500} * (std::uint64_t{1} << std::min(attempt, 6U));
    return std::min<std::chrono::milliseconds>(ms, std::chrono::seconds{30});
}

std::size_t change_listener::drop_all(std::string_view why) {
    if (m_horizon) {
        // The positions of changes not settled yet will not be: the tiles go whole instead.
        m_horizon->clear();
    }
    std::size_t dropped = 0;
    for (auto const& [table, sources] : m_tables) {
        for (auto const& source : sources) {
            if (m_cache != nullptr) {
                dropped += m_cache->drop_source(source.id);
            }
            count_source_drop(source.id, why);
            if (m_on_change) {
                m_on_change(source, {});
            }
        }
    }
    return dropped;
}

std::size_t change_listener::apply(std::string_view payload, int sender_pid) {
    auto const began = clock::now();
    if (postgis::is_catalog_change(payload)) {
        spdlog::debug("Schema change on {} from server process {}: the catalog is reloaded", m_label,
                      sender_pid);
        count_notification(m_label, "catalog");
        if (m_on_catalog) {
            m_on_catalog();
        }
        return 0;
    }
    std::string why;
    auto const change = postgis::parse_change(payload, why);
    if (!change) {
        spdlog::warn("Ignored a change notification on {} from server process {}: {}: {}", m_label,
                     sender_pid, why, shown(payload));
        count_notification(m_label, "malformed");
        return 0;
    }
    auto const it = m_tables.find({change->schema, change->table});
    if (it == m_tables.end()) {
        spdlog::debug("Change notification on {} for {}.{}, which no source follows: ignored", m_label,
                      change->schema, change->table);
        count_notification(m_label, "not_followed");
        return 0;
    }
    std::size_t dropped = 0;
    std::string ids;
    for (auto const& source : it->second) {
        ids += ids.empty() ? source.id : ", " + source.id;
        tiles::tile_area const area =
            change->boxes.empty() ? tiles::tile_area{} : tiles::tile_area{change->boxes, source.margin};
        if (m_horizon) {
            m_horizon->add(source.id, area);
        }
        auto const n = m_cache != nullptr ? m_cache->drop(source.id, area) : 0;
        dropped += n;
        global_metrics().count("kachel_change_tiles_dropped_total",
                               "Cached tiles dropped because their rows changed, by source.",
                               {{"source", source.id}}, n);
        if (area.whole()) {
            count_source_drop(source.id, "whole_table");
        }
        if (m_on_change) {
            m_on_change(source, change->boxes);
        }
    }
    auto const seconds = std::chrono::duration<double>(clock::now() - began).count();
    global_metrics().observe("kachel_change_processing_seconds",
                             "Time from a change notification's arrival to its tiles dropped.",
                             {{"connection", m_label}}, seconds);
    count_notification(m_label, "applied");
    spdlog::debug("Change in {}.{} ({}) from server process {}: dropped {} cached tile(s) of {} in {:.3f} ms",
                  change->schema, change->table,
                  change->boxes.empty() ? std::string{"anywhere"}
                                        : fmt::format("{} box(es)", change->boxes.size()),
                  sender_pid, dropped, ids, seconds * 1000);
    return dropped;
}

asio::awaitable<void> change_listener::run(std::shared_ptr<change_listener> self) {
    auto& st = *self->m_state;
    unsigned failures = 0;
    bool connected_before = false;
    asio::steady_timer pause{st.executor};
    while (!st.stopped) {
        std::string lost;
        try {
            auto conn = co_await pg::connection::async_connect(st.executor, st.params);
            co_await conn->async_exec(fmt::format("LISTEN {}", postgis::change_channel));
            failures = 0;
            if (connected_before) {
                // Changes made while the connection was down were not seen.
                auto const n = self->drop_all("reconnect");
                spdlog::info("Change notifications of {} follow again; dropped {} cached tile(s), since "
                             "changes may have been missed",
                             self->m_label, n);
                if (self->m_on_catalog) {
                    self->m_on_catalog(); // and so may a schema change
                }
            } else {
                // Tiles served before the first LISTEN took effect may predate a change it missed.
                auto const n = self->drop_all("startup");
                spdlog::info("Following the changes of {} table(s) on {}{}", self->m_tables.size(),
                             self->m_label,
                             n == 0 ? std::string{} : fmt::format("; dropped {} tile(s) cached before", n));
            }
            connected_before = true;
            for (;;) {
                auto notes = co_await conn->async_wait_notifications(clock::now() + heartbeat);
                if (notes.empty()) {
                    // A silent connection: make sure it is still there, within a heartbeat.
                    asio::steady_timer deadline{st.executor, heartbeat};
                    auto const outcome =
                        co_await (conn->async_exec("SELECT 1") || deadline.async_wait(asio::use_awaitable));
                    if (outcome.index() == 1) {
                        throw connection_lost_error{"the server did not answer within 10 s"};
                    }
                }
                for (auto const& n : notes) {
                    if (n.channel == postgis::change_channel) {
                        self->apply(n.payload, n.sender_pid);
                    }
                }
                if (self->m_horizon && self->m_horizon->size() > 0) {
                    co_await self->settle(*conn);
                }
            }
        } catch (boost::system::system_error const& e) {
            if (e.code() == asio::error::operation_aborted && st.stopped) {
                co_return;
            }
            lost = e.what();
        } catch (std::exception const& e) {
            lost = e.what();
        }
        if (st.stopped) {
            co_return;
        }
        global_metrics().count("kachel_change_listener_reconnects_total",
                               "Times the change notification connection was lost or could not be made.",
                               {{"connection", self->m_label}});
        auto const wait = backoff(failures++);
        if (connected_before) {
            auto const n = self->drop_all("connection_lost");
            spdlog::warn(
                "Lost the change notifications of {}: {}; dropped {} cached tile(s), trying again in "
                "{} ms",
                self->m_label, lost, n, wait.count());
        } else {
            spdlog::warn("Could not listen for the changes of {}: {}; trying again in {} ms", self->m_label,
                         lost, wait.count());
        }
        pause.expires_after(wait);
        std::ignore = co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<void> change_listener::settle(pg::connection& conn) {
    // Every change notified so far committed before its notification arrived, so its commit
    // record lies below the primary's insert position now.
    auto const last = m_horizon->last();
    auto const r = co_await conn.async_exec("SELECT pg_current_wal_insert_lsn()");
    auto const position = r.num_rows() == 1 ? pg::parse_lsn(r.get(0, 0)) : std::nullopt;
    if (!position) {
        spdlog::warn("The WAL position of {} could not be read: tiles the last changes touched are read "
                     "from the primary until the connection is made again",
                     m_label);
        co_return;
    }
    m_horizon->settle(last, *position);
    m_replicas->expect(*position);
    spdlog::debug("Changes on {} up to number {} are visible at WAL {}", m_label, last,
                  pg::lsn_text(*position));
}

void change_listener::start() {
    asio::co_spawn(m_state->executor, run(shared_from_this()),
                   asio::bind_cancellation_slot(m_state->cancel.slot(), log_failure("The change listener")));
}

void change_listener::stop() {
    m_state->stopped = true;
    m_state->cancel.emit(asio::cancellation_type::terminal);
}

} // namespace kachel::app
