#include "core/metrics.hpp"
#include "core/secrets.hpp"
#include "http/compression.hpp"
#include "http/http_options.hpp"
#include "pg/diagnosis.hpp"
#include "tiles/etag.hpp"

#include <gtest/gtest.h>

using namespace kachel;
using http::encoding;
using http::negotiate_encoding;

namespace {

std::optional<encoding> nego(char const* header, encoding preferred = encoding::gzip,
                             bool compressible = true) {
    return negotiate_encoding(header == nullptr ? std::nullopt : std::optional<std::string_view>{header},
                              encoding::identity, compressible, preferred);
}

} // namespace

TEST(etag, martin_test_vectors) {
    EXPECT_EQ(tiles::etag_value(std::string_view{"\x01\x02\x03", 3}), "O3OuMnabzuvUuMTLiOt3rA");
    EXPECT_EQ(tiles::etag_value(""), "AAAAAAAAAAAAAAAAAAAAAA");
    EXPECT_EQ(tiles::base64url("\xfb\xff"), "-_8");
    EXPECT_EQ(tiles::base64url("abc"), "YWJj");
}

TEST(negotiation, martin_rules) {
    EXPECT_EQ(nego(nullptr), encoding::identity);
    EXPECT_EQ(nego("gzip"), encoding::gzip);
    EXPECT_EQ(nego("br"), encoding::brotli);
    EXPECT_EQ(nego("zstd"), encoding::zstd);
    EXPECT_EQ(nego("br, gzip"), encoding::gzip); // tie -> preferred
    EXPECT_EQ(nego("br, gzip", encoding::brotli), encoding::brotli);
    EXPECT_EQ(nego("gzip;q=0.5, br;q=0.9"), encoding::brotli);
    EXPECT_EQ(nego("gzip;q=0.5, br;q=0.5, zstd;q=0.9"), encoding::zstd);
    EXPECT_EQ(nego("br;q=1, zstd;q=1, gzip;q=0.2"), encoding::brotli); // kachel: the client's best, not gzip
    EXPECT_EQ(nego("*"), encoding::gzip);
    EXPECT_EQ(nego("gzip;q=0, br;q=0"), encoding::identity); // max 0 -> identity
    EXPECT_EQ(nego("identity"), encoding::identity);
    EXPECT_EQ(nego("deflate"), encoding::identity);
    EXPECT_EQ(nego("identity;q=0, gzip;q=0"), std::nullopt);            // nothing left: 406
    EXPECT_EQ(nego("gzip", encoding::gzip, false), encoding::identity); // raster: never compressed
}

TEST(negotiation, stored_encoding_is_sent_as_is_when_listed) {
    EXPECT_EQ(negotiate_encoding("gzip, br", encoding::brotli, true, encoding::gzip), encoding::brotli);
    EXPECT_EQ(negotiate_encoding("gzip", encoding::zstd, true, encoding::gzip), encoding::gzip);
    EXPECT_EQ(negotiate_encoding(std::nullopt, encoding::gzip, true, encoding::gzip), encoding::identity);
}

TEST(compression, round_trips_every_encoding) {
    std::string data;
    for (int i = 0; i < 5000; ++i) {
        data += "kachel tile " + std::to_string(i % 97) + '\n';
    }
    for (auto e : {encoding::gzip, encoding::brotli, encoding::zstd}) {
        auto const packed = http::compress(data, e);
        EXPECT_LT(packed.size(), data.size() / 4) << http::encoding_token(e);
        EXPECT_EQ(http::decompress(packed, e), data) << http::encoding_token(e);
    }
    // Concatenated gzip members (how composite tiles of gzip sources look) decode to both.
    auto const two = http::compress("ab", encoding::gzip) + http::compress("cd", encoding::gzip);
    EXPECT_EQ(http::decompress(two, encoding::gzip), "abcd");
    EXPECT_THROW((void)http::decompress("not gzip", encoding::gzip), std::runtime_error);
}

TEST(compression, outputs_larger_than_the_threads_buffer_and_after_it_round_trip) {
    // 3 MB of poorly compressible bytes (a big tile's output outgrows the per-thread buffer),
    // then a small input again, which goes back to that buffer: neither sees the other's bytes.
    std::string large(3U << 20, '\0');
    std::uint32_t state = 12345;
    for (auto& c : large) {
        state = state * 1664525U + 1013904223U;
        c = static_cast<char>(state >> 24);
    }
    std::string const small = "a small tile";
    for (auto e : {encoding::gzip, encoding::brotli, encoding::zstd}) {
        auto const packed_large = http::compress(large, e);
        auto const packed_small = http::compress(small, e);
        EXPECT_EQ(http::decompress(packed_large, e), large) << http::encoding_token(e);
        EXPECT_EQ(http::decompress(packed_small, e), small) << http::encoding_token(e);
        EXPECT_LT(packed_small.size(), 64U) << http::encoding_token(e);
    }
}

TEST(accept, tile_formats) {
    EXPECT_TRUE(http::parse_accept(std::nullopt).any);
    EXPECT_TRUE(http::parse_accept("").any);
    EXPECT_TRUE(http::parse_accept("text/html, */*;q=0.8").any);
    auto const mvt = http::parse_accept("application/vnd.mapbox-vector-tile");
    EXPECT_FALSE(mvt.any);
    EXPECT_TRUE(mvt.allows("application/x-protobuf"));
    auto const images = http::parse_accept("image/*");
    EXPECT_TRUE(images.allows("image/webp"));
    EXPECT_FALSE(images.allows("application/x-protobuf"));
    EXPECT_TRUE(http::parse_accept("image/jpg").allows("image/jpeg"));
    EXPECT_TRUE(http::parse_accept("text/html").types.empty());
    EXPECT_TRUE(http::parse_accept("application/x-protobuf;q=0").types.empty());
    // q-values other than 0 do not order anything (Martin): MVT stays allowed.
    EXPECT_TRUE(
        http::parse_accept("image/png;q=0.9, application/x-protobuf;q=0.1").allows("application/x-protobuf"));
}

TEST(http_options, cors_cache_control_and_redaction) {
    http::cors_options cors;
    EXPECT_TRUE(cors.allows("http://any.example"));
    cors.origins = {"https://maps.example"};
    EXPECT_TRUE(cors.allows("https://maps.example"));
    EXPECT_FALSE(cors.allows("https://evil.example"));
    EXPECT_TRUE(http::is_valid_cache_control("public, max-age=3600"));
    EXPECT_TRUE(http::is_valid_cache_control("no-cache"));
    EXPECT_FALSE(http::is_valid_cache_control("max age=3"));
    EXPECT_FALSE(http::is_valid_cache_control(""));
    EXPECT_EQ(redact_query("token=s3cret&x=1&API_KEY=k"), "token=***&x=1&API_KEY=***");
    EXPECT_EQ(redact_query("a=1"), "a=1");
}

TEST(metrics, exposition_format) {
    metrics m;
    m.set_constant_labels({{"env", "test"}});
    m.count_request("/{source_ids}/{z}/{x}/{y}", "GET", 200, 0.02);
    m.count_request("/{source_ids}/{z}/{x}/{y}", "GET", 200, 3);
    m.count_connection_attempt("h:5432/db", "refused");
    m.add_gauges([] {
        return std::vector<metrics::gauge_sample>{{"kachel_test_gauge", "A gauge.", {{"a", "b\"c"}}, 2}};
    });
    auto const text = m.render();
    EXPECT_NE(text.find("kachel_http_requests_total{endpoint=\"/{source_ids}/{z}/{x}/{y}\",method=\"GET\","
                        "status=\"200\",env=\"test\"} 2\n"),
              std::string::npos)
        << text;
    EXPECT_NE(
        text.find("_bucket{endpoint=\"/{source_ids}/{z}/{x}/{y}\",method=\"GET\",status=\"200\",le=\"0.025\","
                  "env=\"test\"} 1\n"),
        std::string::npos)
        << text;
    EXPECT_NE(text.find("le=\"+Inf\",env=\"test\"} 2\n"), std::string::npos) << text;
    EXPECT_NE(
        text.find("kachel_postgres_connection_failures_total{connection=\"h:5432/db\",reason=\"refused\","
                  "env=\"test\"} 1\n"),
        std::string::npos)
        << text;
    EXPECT_NE(text.find("# TYPE kachel_test_gauge gauge\nkachel_test_gauge{a=\"b\\\"c\",env=\"test\"} 2\n"),
              std::string::npos)
        << text;
}

TEST(diagnosis, failure_reasons_for_metrics) {
    EXPECT_EQ(pg::failure_reason("...: Connection refused\n\tIs the server running"), "refused");
    EXPECT_EQ(pg::failure_reason("SSL error: certificate verify failed"), "tls");
    EXPECT_EQ(pg::failure_reason("FATAL:  password authentication failed for user \"x\""), "authentication");
    EXPECT_EQ(pg::failure_reason("FATAL:  the database system is starting up"), "starting_up");
    EXPECT_EQ(pg::failure_reason("something"), "other");
}
