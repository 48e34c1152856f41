#include "pg/replica_set.hpp"

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "pg/tls_info.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <limits>

namespace kachel::pg {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using clock = std::chrono::steady_clock;

namespace {

/// The check: is the host a standby, and where is its WAL (replayed on a standby, inserted on
/// the primary: a change it notified after its commit lies at or below that).
constexpr char const* check_sql =
    "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    "ELSE pg_current_wal_insert_lsn() END";

} // namespace

struct replica_set::state {
    explicit state(asio::any_io_executor ex) : executor(std::move(ex)) {}
    asio::any_io_executor executor;
    std::vector<std::unique_ptr<asio::steady_timer>> timers; ///< each host's pause between checks
    std::vector<std::unique_ptr<asio::cancellation_signal>> cancels;
    bool stopped = false;
};

std::shared_ptr<replica_set> replica_set::create(asio::any_io_executor executor,
                                                 std::shared_ptr<pool> primary,
                                                 std::vector<connect_params> hosts,
                                                 pool_options const& options, read_target target) {
    assert(hosts.size() >= 2);
    return std::shared_ptr<replica_set>{
        new replica_set(std::move(executor), std::move(primary), std::move(hosts), options, target)};
}

replica_set::replica_set(asio::any_io_executor executor, std::shared_ptr<pool> primary,
                         std::vector<connect_params> hosts, pool_options const& options, read_target target)
    : m_primary(std::move(primary)), m_target(target), m_name(options.name),
      m_state(std::make_shared<state>(std::move(executor))) {
    for (auto& params : hosts) {
        host_state h;
        h.label = params.label();
        if (params.host_roles.size() == 1) {
            h.configured = params.host_roles.front();
        }
        auto host_options = options;
        // application_name "kachel@localhost:5433/C2": pg_stat_activity tells the hosts apart.
        host_options.name = fmt::format("{}@{}:{}", options.name, params.keyword("host").value_or("default"),
                                        params.keyword("port").value_or("default"));
        h.reads = pool::create(params, std::move(host_options));
        h.params = std::move(params);
        m_hosts.push_back(std::move(h));
        m_state->timers.push_back(std::make_unique<asio::steady_timer>(m_state->executor));
        m_state->cancels.push_back(std::make_unique<asio::cancellation_signal>());
    }
}

replica_set::~replica_set() = default;

std::chrono::milliseconds replica_set::backoff(unsigned failures) noexcept {
    auto const ms = std::chrono::milliseconds{500} * (std::uint64_t{1} << std::min(failures, 4U));
    return std::min<std::chrono::milliseconds>(ms, std::chrono::seconds{8});
}

void replica_set::start() {
    for (std::size_t i = 0; i < m_hosts.size(); ++i) {
        asio::co_spawn(
            m_state->executor, watch(shared_from_this(), i),
            asio::bind_cancellation_slot(m_state->cancels[i]->slot(), log_failure("A host check")));
    }
}

void replica_set::stop() {
    asio::post(m_state->executor, [st = m_state] {
        st->stopped = true;
        for (auto const& c : st->cancels) {
            c->emit(asio::cancellation_type::terminal);
        }
        for (auto const& t : st->timers) {
            t->cancel();
        }
    });
}

std::chrono::milliseconds replica_set::next_check(std::size_t index) const {
    std::lock_guard const lock{m_mutex};
    auto const& h = m_hosts[index];
    bool const behind = h.role == "standby" && h.position < m_expected;
    bool const recent = clock::now() - m_expected_at < eager_for;
    return behind && recent ? eager_interval : check_interval;
}

std::string replica_set::role_mismatch(host_state& h, std::string const& role, std::string const& name) {
    if (h.configured.value.empty() || h.configured.value == role) {
        h.mismatch.clear();
        return {};
    }
    if (h.mismatch == role) {
        return {};
    }
    h.mismatch = role;
    return fmt::format("Host {} of {} answers as a {}, but {} says it is a {}: kachel follows the "
                       "server ({}); if the change is meant to last, update the role in the config",
                       h.label, name, role, h.configured.source, h.configured.value,
                       role == "primary"
                           ? "discovery and LISTEN go to it, tile reads only when no standby can"
                           : "tile reads go to it, discovery and LISTEN to the primary");
}

void replica_set::record(std::size_t index, std::optional<std::string> role, std::uint64_t position,
                         std::string const& error) {
    std::string log_line;
    bool warn = false;
    std::string primaries_warning;
    std::string mismatch_warning;
    {
        std::lock_guard const lock{m_mutex};
        auto& h = m_hosts[index];
        if (!role) {
            if (h.up || h.role == "unknown") {
                log_line = fmt::format("Host {} of {} {}: {}", h.label, m_name,
                                       h.up ? "left the rotation" : "is not answering", first_line(error));
                warn = true;
            }
            if (h.role == "unknown") {
                h.role = "unreachable";
            }
            h.up = false;
            h.caught_up = false;
            h.error = first_line(error);
        } else if (!h.up) {
            // Back (or there for the first time): behind every change expected so far until it
            // has replayed them.
            h.rejoin_position = m_expected;
            log_line = fmt::format("Host {} of {} answers as a {}{}", h.label, m_name, *role,
                                   h.role == "unknown" || h.role == "unreachable" ? std::string{} : " again");
        } else if (h.role != *role) {
            log_line = fmt::format("Host {} of {} was a {} and is now a {}{}", h.label, m_name, h.role, *role,
                                   *role == "primary" ? " (promoted)" : "");
            warn = true;
            h.rejoin_position = m_expected;
            h.caught_up = false;
        }
        if (role) {
            mismatch_warning = role_mismatch(h, *role, m_name);
            h.up = true;
            h.error.clear();
            h.role = *role;
            h.position = position;
            if (!h.caught_up && (h.role != "standby" || position >= h.rejoin_position)) {
                h.caught_up = true;
            }
        }
        std::vector<std::string> primaries;
        for (auto const& other : m_hosts) {
            if (other.up && other.role == "primary") {
                primaries.push_back(other.label);
            }
        }
        // Warned about once for each set of hosts that say so.
        auto const joined = fmt::format("{}", fmt::join(primaries, ", "));
        if (primaries.size() > 1 && joined != m_primaries) {
            primaries_warning =
                fmt::format("{} hosts of {} say they are the primary: {}. Only one should be; "
                            "kachel reads from the standbys and discovers and listens on the "
                            "one libpq finds first",
                            primaries.size(), m_name, joined);
        }
        m_primaries = joined;
    }
    if (!log_line.empty()) {
        if (warn) {
            spdlog::warn("{}", log_line);
        } else {
            spdlog::info("{}", log_line);
        }
    }
    for (auto const* w : {&mismatch_warning, &primaries_warning}) {
        if (!w->empty()) {
            spdlog::warn("{}", *w);
        }
    }
}

asio::awaitable<void> replica_set::watch(std::shared_ptr<replica_set> self, std::size_t index) {
    auto const st = self->m_state;
    auto& timer = *st->timers[index];
    auto params = self->m_hosts[index].params;
    params.application_name = self->m_name + "/check";
    unsigned failures = 0;
    bool tls_logged = false;
    std::unique_ptr<connection> conn;
    while (!st->stopped) {
        std::string error;
        std::optional<std::string> role;
        std::uint64_t position = 0;
        try {
            if (conn && !conn->check_idle()) {
                conn.reset(); // the server ended the session: the host may still be up
            }
            if (!conn) {
                conn = co_await connection::async_connect(st->executor, params,
                                                          clock::now() + connection::default_connect_timeout);
                if (!tls_logged) {
                    log_tls(inspect_tls(*conn, params), *conn, params,
                            self->m_hosts[index].reads->options().name);
                    tls_logged = true;
                }
            }
            asio::steady_timer limit{st->executor, check_timeout};
            auto outcome = co_await (conn->async_exec(check_sql) ||
                                     limit.async_wait(asio::as_tuple(asio::use_awaitable)));
            if (outcome.index() == 1) {
                throw connection_lost_error{
                    fmt::format("no answer to a check within {} ms", check_timeout.count())};
            }
            auto const& r = std::get<0>(outcome);
            role = r.get(0, 0) == "t" ? "standby" : "primary";
            position = r.is_null(0, 1) ? 0 : parse_lsn(r.get(0, 1)).value_or(0);
        } catch (boost::system::system_error const& e) {
            if (e.code() == asio::error::operation_aborted && st->stopped) {
                co_return;
            }
            error = e.what();
        } catch (std::exception const& e) {
            error = e.what();
        }
        if (st->stopped) {
            co_return;
        }
        self->record(index, role, position, error);
        auto pause = self->next_check(index);
        if (!role) {
            conn.reset();
            pause = backoff(failures++);
        } else {
            failures = 0;
        }
        timer.expires_after(pause);
        std::ignore = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

void replica_set::host_failed(std::size_t host, std::string const& why) {
    record(host, std::nullopt, 0, why);
    // Checked again at once: a lost connection may be one of a pool, the host up.
    asio::post(m_state->executor, [st = m_state, host] { st->timers[host]->cancel(); });
}

void replica_set::expect(std::uint64_t position) {
    {
        std::lock_guard const lock{m_mutex};
        if (position <= m_expected) {
            return;
        }
        m_expected = position;
        m_expected_at = clock::now();
    }
    asio::post(m_state->executor, [st = m_state] {
        for (auto const& t : st->timers) {
            t->cancel();
        }
    });
}

std::uint64_t replica_set::replayed_everywhere() const {
    std::lock_guard const lock{m_mutex};
    auto lowest = std::numeric_limits<std::uint64_t>::max();
    for (auto const& h : m_hosts) {
        // A standby that is down does not hold changes back: back up, it serves reads only once
        // it has replayed every position expected meanwhile (rejoin_position).
        if (h.role == "standby" && h.up) {
            lowest = std::min(lowest, h.position);
        }
    }
    return lowest;
}

std::optional<std::size_t> replica_set::pick(std::uint64_t min_position, bool furthest) {
    std::lock_guard const lock{m_mutex};
    if (furthest) {
        std::optional<std::size_t> best;
        for (std::size_t i = 0; i < m_hosts.size(); ++i) {
            auto const& h = m_hosts[i];
            if (h.up && h.role == "standby" && (!best || h.position > m_hosts[*best].position)) {
                best = i;
            }
        }
        return best;
    }
    for (std::size_t n = 0; n < m_hosts.size(); ++n) {
        auto const i = (m_next + n) % m_hosts.size();
        auto const& h = m_hosts[i];
        if (h.up && h.caught_up && h.role == "standby" && h.position >= min_position) {
            m_next = i + 1;
            return i;
        }
    }
    return std::nullopt;
}

asio::awaitable<std::optional<replica_set::read_lease>> replica_set::async_standby(std::uint64_t min_position,
                                                                                   bool furthest) {
    // A standby that cannot give a connection leaves the rotation; the next one is tried.
    for (std::size_t tried = 0; tried < m_hosts.size(); ++tried) {
        auto const chosen = pick(min_position, furthest);
        if (!chosen) {
            break;
        }
        try {
            auto conn = co_await m_hosts[*chosen].reads->async_acquire();
            co_return read_lease{std::move(conn), chosen};
        } catch (unavailable_error const& e) {
            host_failed(*chosen, e.what());
        }
    }
    co_return std::nullopt;
}

asio::awaitable<replica_set::read_lease> replica_set::async_acquire_read(std::uint64_t min_position) {
    if (m_target != read_target::primary_only) {
        auto lease = co_await async_standby(min_position, false);
        if (lease) {
            co_return std::move(*lease);
        }
    }
    std::string primary_failure;
    if (m_target != read_target::standbys_only) {
        try {
            auto conn = co_await m_primary->async_acquire();
            co_return read_lease{std::move(conn), std::nullopt};
        } catch (unavailable_error const& e) {
            if (m_target == read_target::primary_only) {
                throw;
            }
            primary_failure = first_line(e.what());
        }
    }
    // The primary cannot take it: a standby that replays the position soon, or the furthest.
    auto const executor = co_await asio::this_coro::executor;
    asio::steady_timer pause{executor};
    auto const deadline = clock::now() + lag_wait;
    while (min_position > 0 && clock::now() < deadline && !pick(min_position, false)) {
        pause.expires_after(eager_interval);
        co_await pause.async_wait(asio::use_awaitable);
    }
    auto replayed = co_await async_standby(min_position, false);
    if (replayed) {
        co_return std::move(*replayed);
    }
    if (min_position > 0) {
        spdlog::debug(
            "{}: a read that must see WAL {} goes to the standby furthest along: the primary is not "
            "answering ({})",
            m_name, lsn_text(min_position), primary_failure);
    }
    auto furthest = co_await async_standby(0, true);
    if (furthest) {
        co_return std::move(*furthest);
    }
    std::vector<std::string> why;
    if (!primary_failure.empty()) {
        why.push_back(fmt::format("the primary: {}", primary_failure));
    }
    for (auto const& h : report()) {
        why.push_back(
            fmt::format("{} ({}): {}", h.label, h.role,
                        h.up ? std::string{h.role == "standby" ? "behind" : "not a standby"} : h.error));
    }
    throw unavailable_error{
        fmt_error("no host of {} can take a tile read now; {}", m_name, fmt::join(why, "; "))};
}

std::vector<host_report> replica_set::report() const {
    std::lock_guard const lock{m_mutex};
    std::vector<host_report> out;
    for (auto const& h : m_hosts) {
        out.push_back(
            host_report{h.label, h.role, h.up,
                        h.up && h.caught_up && h.role == "standby" && m_target != read_target::primary_only,
                        h.position, h.error, h.configured.value});
    }
    return out;
}

std::string const& replica_set::label(std::size_t host) const noexcept {
    return m_hosts[host].label;
}

std::vector<std::shared_ptr<pool>> replica_set::host_pools() const {
    std::vector<std::shared_ptr<pool>> out;
    for (auto const& h : m_hosts) {
        out.push_back(h.reads);
    }
    return out;
}

} // namespace kachel::pg
