// bench/run's helper for live data: how long after an update's COMMIT kachel serves the new tile.
//
//   live_probe CONNINFO PORT SOURCE ZOOM ROUNDS
//
// Each round picks a row of bench.points, warms the cache with the tile that holds it, renames the
// row in a transaction and, from the moment COMMIT is sent, asks for the tile over one kept-alive
// connection until the answer holds the new name. Prints one JSON line: the rounds, the latency
// percentiles in ms, and how many answers came back old before the new one.

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using clock_type = std::chrono::steady_clock;

struct pg_result_deleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, pg_result_deleter>;

result_ptr run(PGconn* conn, std::string const& sql) {
    result_ptr r{PQexec(conn, sql.c_str())};
    auto const st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        throw std::runtime_error{fmt::format("{}: {}", sql, PQresultErrorMessage(r.get()))};
    }
    return r;
}

/// One kept-alive HTTP/1.1 connection to 127.0.0.1.
class http_connection {
  public:
    explicit http_connection(unsigned short port) : m_socket(m_ioc) {
        m_socket.connect(asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), port});
    }
    std::string get(std::string const& target) {
        bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
        req.set(bhttp::field::host, "127.0.0.1");
        bhttp::write(m_socket, req);
        bhttp::response<bhttp::string_body> res;
        bhttp::read(m_socket, m_buffer, res);
        if (res.result_int() != 200 && res.result_int() != 204) {
            throw std::runtime_error{fmt::format("GET {}: {}", target, res.result_int())};
        }
        return std::move(res.body());
    }

  private:
    asio::io_context m_ioc;
    asio::ip::tcp::socket m_socket;
    boost::beast::flat_buffer m_buffer;
};

double percentile(std::vector<double> values, double p) {
    std::sort(values.begin(), values.end());
    auto const at = static_cast<std::size_t>(std::ceil(p * static_cast<double>(values.size()))) - 1;
    return values[std::min(at, values.size() - 1)];
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: live_probe CONNINFO PORT SOURCE ZOOM ROUNDS\n");
        return 2;
    }
    try {
        std::unique_ptr<PGconn, decltype(&PQfinish)> conn{PQconnectdb(argv[1]), &PQfinish};
        if (PQstatus(conn.get()) != CONNECTION_OK) {
            throw std::runtime_error{PQerrorMessage(conn.get())};
        }
        auto const port = static_cast<unsigned short>(std::stoi(argv[2]));
        std::string const source = argv[3];
        int const z = std::stoi(argv[4]);
        int const rounds = std::stoi(argv[5]);
        http_connection http{port};
        std::vector<double> latencies;
        std::size_t old_answers = 0;
        for (int round = 1; round <= rounds; ++round) {
            auto const id = 1 + (static_cast<long>(round) * 7919 + 104729) % 1000000;
            auto const where = run(
                conn.get(), fmt::format("SELECT ST_X(geom), ST_Y(geom) FROM bench.points WHERE id = {}", id));
            double const lon = std::stod(PQgetvalue(where.get(), 0, 0));
            double const lat = std::stod(PQgetvalue(where.get(), 0, 1)) * std::numbers::pi / 180;
            double const n = std::ldexp(1.0, z);
            auto const x = static_cast<long>((lon + 180) / 360 * n);
            auto const y = static_cast<long>(
                (1 - std::log(std::tan(lat) + 1 / std::cos(lat)) / std::numbers::pi) / 2 * n);
            auto const target = fmt::format("/{}/{}/{}/{}", source, z, x, y);
            http.get(target);
            http.get(target); // cached now
            auto const name = fmt::format("probe {} of {}", round, ::getpid());
            run(conn.get(), "BEGIN");
            run(conn.get(), fmt::format("UPDATE bench.points SET name = '{}' WHERE id = {}", name, id));
            auto const committed = clock_type::now();
            run(conn.get(), "COMMIT");
            for (;;) {
                if (http.get(target).find(name) != std::string::npos) {
                    break;
                }
                ++old_answers;
                if (clock_type::now() - committed > std::chrono::seconds{10}) {
                    throw std::runtime_error{fmt::format("{} still old 10 s after the commit", target)};
                }
            }
            latencies.push_back(
                std::chrono::duration<double, std::milli>(clock_type::now() - committed).count());
        }
        std::printf(
            "{\"rounds\": %d, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, \"old_answers\": %zu}\n",
            rounds, percentile(latencies, 0.5), percentile(latencies, 0.99),
            *std::max_element(latencies.begin(), latencies.end()), old_answers);
        return 0;
    } catch (std::exception const& e) {
        std::fprintf(stderr, "live_probe: %s\n", e.what());
        return 1;
    }
}
