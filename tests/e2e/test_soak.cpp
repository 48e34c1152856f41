// Memory soak: a mix of cached, uncached, composite, compressed and failing requests against one
// kachel process; once its tile cache is full, resident memory must stay flat.
// KACHEL_SOAK_SECONDS sets the length (default 60; longer when run by hand).

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/tempdb.hpp"
#include "support/threads.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <regex>
#include <thread>

using namespace kachel;
using namespace std::chrono_literals;

namespace {

std::chrono::seconds soak_length() {
    char const* value = std::getenv("KACHEL_SOAK_SECONDS");
    return std::chrono::seconds{value != nullptr && *value != '\0' ? std::stoi(value) : 60};
}

} // namespace

TEST(soak, resident_memory_stays_flat_once_the_cache_is_full) {
    test::tempdb const db;
    // 8 KB tiles, different for every tile, so the cache churns.
    test::admin_connection{db.name(), "kachel"}.query(
        "CREATE FUNCTION big(z integer, x integer, y integer) RETURNS bytea LANGUAGE sql IMMUTABLE AS "
        "$$ SELECT convert_to(format('%s/%s/%s', z, x, y) || repeat('b', 8000), 'UTF8') $$");
    // ASan keeps freed memory in quarantine (256 MB by default), which would look like growth.
    std::string asan = std::getenv("ASAN_OPTIONS") != nullptr ? std::getenv("ASAN_OPTIONS") : "";
    asan += std::string{asan.empty() ? "" : ":"} + "quarantine_size_mb=8:thread_local_quarantine_size_kb=64";
    // -C 8: 4 MB of tiles, full after about 500 distinct tiles.
    test::child_process kachel{{KACHEL_BINARY, "-l", "127.0.0.1:0", "-W", "2", "-p", "4", "-C", "8",
                                "--no-access-log", test::tls_url(db.name())},
                               {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")},
                                {"DATABASE_URL", std::nullopt},
                                {"ASAN_OPTIONS", asan}}};
    auto const port = test::ready_port(kachel);
    ASSERT_NE(port, 0) << kachel.output();
    auto const idle_kib = kachel.resident_kib();
    ASSERT_GT(idle_kib, 1024U) << "an implausible resident size: the memory check would prove nothing";

    std::atomic<bool> stop{false};
    std::atomic<std::size_t> requests{0};
    std::atomic<std::size_t> unexpected{0};
    std::vector<std::jthread> clients;
    for (unsigned t = 0; t < 4; ++t) {
        clients.push_back(test::test_thread([&, t] {
            for (unsigned n = 0; !stop; ++n) {
                struct step {
                    std::string target;
                    unsigned status;
                    char const* encoding;
                };
                auto const unique = std::to_string(n * 4 + t);
                step const steps[] = {
                    {"/big/14/" + unique + "/7", 200, nullptr},             // uncached, fills the cache
                    {"/big/14/" + unique + "/7", 200, "gzip"},              // its gzip variant
                    {"/points/2/" + std::to_string(n % 4) + "/1", 0, "br"}, // hot, cached
                    {"/points,polygons,lines/1/" + std::to_string(n % 2) + "/0", 0, nullptr}, // composite
                    {"/fn_query_echo/3/1/1?n=" + unique, 200, nullptr},                       // query-keyed
                    {"/fn_token/0/0/0", 500, nullptr}, // the function raises
                    {"/nosuch/0/0/0", 404, nullptr},
                    {"/points/31/0/0", 400, nullptr},
                    {"/points", 200, "gzip"}, // TileJSON
                };
                for (auto const& s : steps) {
                    std::vector<std::pair<std::string, std::string>> headers;
                    if (s.encoding != nullptr) {
                        headers.emplace_back("Accept-Encoding", s.encoding);
                    }
                    try {
                        auto const r =
                            test::http_request(port, s.target, boost::beast::http::verb::get, headers);
                        bool const ok =
                            s.status == 0 ? (r.status == 200 || r.status == 204) : r.status == s.status;
                        unexpected += ok ? 0 : 1;
                    } catch (std::exception const&) {
                        ++unexpected;
                    }
                    ++requests;
                }
            }
        }));
    }

    auto const length = soak_length();
    auto const warm_up = length * 3 / 10;
    auto const started = std::chrono::steady_clock::now();
    std::vector<std::size_t> after_warm_up;
    std::size_t at_warm_up = 0;
    while (std::chrono::steady_clock::now() - started < length) {
        std::this_thread::sleep_for(500ms);
        auto const rss = kachel.resident_kib();
        if (std::chrono::steady_clock::now() - started < warm_up) {
            at_warm_up = rss;
        } else {
            after_warm_up.push_back(rss);
        }
    }
    stop = true;
    clients.clear();
    ASSERT_FALSE(after_warm_up.empty());
    auto const peak = *std::max_element(after_warm_up.begin(), after_warm_up.end());
    auto const last = after_warm_up.back();
    auto const cache_bytes =
        static_cast<std::size_t>(test::metric_value(port, "kachel_tile_cache_bytes").value_or(0));
    std::cout << "soak " << length.count() << " s: " << requests << " requests, " << unexpected
              << " unexpected; resident memory idle " << idle_kib / 1024 << " MiB, after warm-up "
              << at_warm_up / 1024 << " MiB, peak " << peak / 1024 << " MiB, end " << last / 1024
              << " MiB; cache " << cache_bytes / 1000 << " kB\n";
    EXPECT_EQ(unexpected, 0U);
    EXPECT_GT(cache_bytes, 3'500'000U) << "the cache never filled, so the test proves little";
    // Flat: the peak after warm-up stays within 10% (and 8 MiB) of the level reached at warm-up.
    EXPECT_LE(peak, at_warm_up + std::max<std::size_t>(at_warm_up / 10, 8 * 1024))
        << "resident memory grew after warm-up";
}
