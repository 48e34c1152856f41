// Connection strings of several hosts (a primary and its standbys), WAL positions, and the
// changes a standby may not show yet.

#include "core/error.hpp"
#include "pg/diagnosis.hpp"
#include "pg/hosts.hpp"
#include "tiles/change_horizon.hpp"

#include <gtest/gtest.h>

using namespace kachel;

namespace {

pg::connect_params parsed(std::string const& conninfo) {
    return pg::make_connect_params(conninfo, {}, "test");
}

} // namespace

TEST(hosts, a_url_of_several_hosts_splits_into_one_string_per_host_with_the_rest_kept) {
    auto const params = parsed("postgresql://u:secret@a.example:5432,b.example:5433/gis?sslmode=verify-full"
                               "&target_session_attrs=prefer-standby&sslrootcert=/ca.crt");
    EXPECT_EQ(params.label(), "a.example:5432,b.example:5433/gis");
    auto const hosts = pg::split_hosts(params);
    ASSERT_EQ(hosts.size(), 2U);
    EXPECT_EQ(hosts[0].label(), "a.example:5432/gis");
    EXPECT_EQ(hosts[1].label(), "b.example:5433/gis");
    for (auto const& h : hosts) {
        EXPECT_EQ(h.keyword("sslmode"), "verify-full");
        EXPECT_EQ(h.keyword("sslrootcert"), "/ca.crt");
        EXPECT_EQ(h.keyword("password"), "secret");
        EXPECT_FALSE(h.keyword("target_session_attrs"));
    }
    EXPECT_EQ(pg::read_target_of(params), pg::read_target::spread);
    // The primary's string: every host, and libpq asked for the one that takes writes.
    auto const primary = pg::primary_params(params);
    EXPECT_EQ(primary.keyword("host"), "a.example,b.example");
    EXPECT_EQ(primary.keyword("target_session_attrs"), "read-write");
}

TEST(hosts, one_port_serves_every_host_and_a_single_host_is_left_as_it_is) {
    auto const hosts = pg::split_hosts(parsed("host=a,b,c port=6000 dbname=d"));
    ASSERT_EQ(hosts.size(), 3U);
    EXPECT_EQ(hosts[2].label(), "c:6000/d");
    auto const one = parsed("host=a port=6000 dbname=d target_session_attrs=any");
    EXPECT_EQ(pg::split_hosts(one).size(), 1U);
    EXPECT_EQ(pg::primary_params(one).keyword("target_session_attrs"), "any");
    EXPECT_EQ(one.label(), "a:6000/d");
}

TEST(hosts, lists_of_unequal_length_and_unknown_targets_are_refused_with_the_rule) {
    try {
        (void)pg::split_hosts(parsed("host=a,b,c port=1,2 dbname=d"));
        FAIL() << "accepted";
    } catch (config_error const& e) {
        EXPECT_NE(std::string{e.what()}.find("3 host(s)"), std::string::npos) << e.what();
        EXPECT_NE(std::string{e.what()}.find("one port for all hosts, or one per host"), std::string::npos);
    }
    EXPECT_EQ(pg::read_target_of(parsed("host=a,b target_session_attrs=standby")),
              pg::read_target::standbys_only);
    EXPECT_EQ(pg::read_target_of(parsed("host=a,b target_session_attrs=read-write")),
              pg::read_target::primary_only);
    // libpq itself refuses an unknown value when it parses the string, so kachel's check is for
    // values that reach it otherwise.
    pg::connect_params odd;
    odd.keywords.emplace_back("target_session_attrs", "nearest");
    EXPECT_THROW((void)pg::read_target_of(odd), config_error);
}

TEST(hosts, wal_positions_read_and_print_as_postgres_does) {
    EXPECT_EQ(pg::parse_lsn("16/B374D848"), (std::uint64_t{0x16} << 32U) | 0xB374D848U);
    EXPECT_EQ(pg::parse_lsn("0/0"), 0U);
    EXPECT_EQ(pg::lsn_text(0x16B374D848), "16/B374D848");
    for (auto const* bad : {"", "16", "/1", "1/", "1/2x", "g/1", "1//2"}) {
        EXPECT_FALSE(pg::parse_lsn(bad)) << bad;
    }
}

TEST(change_horizon, a_read_needs_the_position_of_the_changes_that_touch_its_tile) {
    tiles::change_horizon horizon;
    EXPECT_EQ(horizon.needed("a", {5, 16, 10}, 0), 0U);
    // Paris, at zoom 5: tile 16/11.
    auto const first = horizon.add("a", tiles::tile_area{{tiles::lonlat_box{2.3, 48.8, 2.4, 48.9}}, 0});
    tile_coord const paris{5, 16, 11};
    tile_coord const elsewhere{5, 3, 20};
    EXPECT_EQ(horizon.needed("a", paris, 0), tiles::change_horizon::unknown)
        << "before its position is known";
    EXPECT_EQ(horizon.needed("a", elsewhere, 0), 0U);
    EXPECT_EQ(horizon.needed("b", paris, 0), 0U);
    horizon.settle(first, 1000);
    auto const second = horizon.add("a", tiles::tile_area{});
    EXPECT_EQ(horizon.needed("a", paris, 0), tiles::change_horizon::unknown);
    horizon.settle(second, 2000);
    EXPECT_EQ(horizon.needed("a", paris, 0), 2000U);
    EXPECT_EQ(horizon.needed("a", elsewhere, 0), 2000U) << "a change anywhere touches every tile";
    // Replayed everywhere up to 1500: the first change leaves, the second stays.
    EXPECT_EQ(horizon.needed("a", paris, 1500), 2000U);
    EXPECT_EQ(horizon.size(), 1U);
    EXPECT_EQ(horizon.needed("a", paris, 2000), 0U);
    EXPECT_EQ(horizon.size(), 0U);
    (void)horizon.add("a", tiles::tile_area{});
    horizon.clear();
    EXPECT_EQ(horizon.needed("a", paris, 0), 0U);
}

TEST(change_horizon, past_its_bound_it_keeps_one_change_per_source_at_the_highest_position) {
    tiles::change_horizon horizon;
    for (std::size_t i = 0; i <= tiles::change_horizon::max_pending; ++i) {
        horizon.settle(horizon.add(i % 2 == 0 ? "a" : "b",
                                   tiles::tile_area{{tiles::lonlat_box{2.3, 48.8, 2.4, 48.9}}, 0}),
                       100 + i);
    }
    EXPECT_EQ(horizon.size(), 2U);
    EXPECT_EQ(horizon.needed("a", {5, 3, 20}, 0), 100 + tiles::change_horizon::max_pending)
        << "merged: every tile of the source";
}

TEST(hosts, a_failure_of_several_hosts_gets_a_hint_for_each_way_they_failed) {
    auto const params = parsed("host=localhost,localhost port=1,5433 dbname=d");
    std::string const both_refused =
        "connection to server at \"localhost\" (127.0.0.1), port 1 failed: Connection "
        "refused\n\tIs the server running?\nconnection to server at \"localhost\" "
        "(127.0.0.1), port 5433 failed: Connection refused\n\tIs the server running?";
    EXPECT_EQ(pg::connection_hints(both_refused, params), pg::connection_hint(both_refused, params));
    std::string const mixed = "connection to server at \"localhost\" (127.0.0.1), port 1 failed: Connection "
                              "refused\n\tIs the server running?\nconnection to server at \"localhost\" "
                              "(127.0.0.1), port 5433 failed: session is read-only";
    auto const hints = pg::connection_hints(mixed, params);
    auto const newline = hints.find('\n');
    ASSERT_NE(newline, std::string::npos) << hints;
    EXPECT_NE(hints.substr(0, newline).find("refused"), std::string::npos) << hints;
    EXPECT_NE(hints.substr(0, newline).find("(for \"localhost\" (127.0.0.1), port 1)"), std::string::npos)
        << hints;
    EXPECT_NE(hints.substr(newline).find("this host is a standby"), std::string::npos) << hints;
    EXPECT_NE(hints.substr(newline).find("port 5433)"), std::string::npos) << hints;
}
