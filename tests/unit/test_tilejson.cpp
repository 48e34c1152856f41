#include "core/error.hpp"
#include "postgis/table_source.hpp"
#include "tiles/catalog.hpp"
#include "tiles/tilejson.hpp"

#include <gtest/gtest.h>

using namespace kachel;

namespace {

/// A source with a fixed TileJSON, for the parts that do not need a database.
class fixed_source final : public tiles::tile_source {
  public:
    fixed_source(std::string id, nlohmann::json tilejson)
        : m_id(std::move(id)), m_tilejson(std::move(tilejson)) {}
    [[nodiscard]] std::string const& id() const noexcept override { return m_id; }
    [[nodiscard]] nlohmann::json const& tilejson() const noexcept override { return m_tilejson; }
    [[nodiscard]] std::string_view content_type() const noexcept override { return "application/x-protobuf"; }
    boost::asio::awaitable<tiles::tile_result> async_get_tile(tile_coord, std::string const&) const override {
        co_return tiles::tile_result{};
    }

  private:
    std::string m_id;
    nlohmann::json m_tilejson;
};

postgis::table_info points_table() {
    postgis::table_info t;
    t.schema = "public";
    t.table = "points";
    t.geometry_column = "geom";
    t.srid = 4326;
    t.properties = {{"gid", "int4"}, {"name", "text"}, {"tags", "text"}};
    return t;
}

postgis::table_spec spec_of(postgis::table_info table, std::optional<std::array<double, 4>> bounds = {}) {
    postgis::table_spec spec;
    spec.id = "points";
    spec.layout.layer = "points";
    spec.layout.properties = postgis::all_properties(table);
    spec.table = std::move(table);
    spec.extras.bounds = bounds;
    return spec;
}

} // namespace

TEST(tilejson, table_source_document) {
    auto const doc = postgis::table_tilejson(spec_of(points_table(), std::array<double, 4>{-10, -5, 10, 5}));
    EXPECT_EQ(doc["tilejson"], "3.0.0");
    EXPECT_EQ(doc["name"], "points");
    EXPECT_EQ(doc["description"], "public.points.geom");
    EXPECT_EQ(doc["bounds"], nlohmann::json::array({-10.0, -5.0, 10.0, 5.0}));
    ASSERT_EQ(doc["vector_layers"].size(), 1U);
    EXPECT_EQ(doc["vector_layers"][0]["id"], "points");
    EXPECT_EQ(doc["vector_layers"][0]["fields"],
              (nlohmann::json{{"gid", "int4"}, {"name", "text"}, {"tags", "text"}}));
    EXPECT_FALSE(doc.contains("minzoom"));
}

TEST(tilejson, no_bounds_when_unknown) {
    auto const doc = postgis::table_tilejson(spec_of(points_table()));
    EXPECT_FALSE(doc.contains("bounds"));
}

TEST(tilejson, json_comment_is_a_merge_patch) {
    auto table = points_table();
    table.comment = R"({"description": null, "attribution": "me", "foo": {"bar": 1}})";
    auto const doc = postgis::table_tilejson(spec_of(table));
    EXPECT_FALSE(doc.contains("description"));
    EXPECT_EQ(doc["attribution"], "me");
    EXPECT_EQ(doc["foo"]["bar"], 1);
    EXPECT_EQ(doc["name"], "points");
}

TEST(tilejson, plain_text_comment_is_ignored) {
    auto table = points_table();
    table.comment = "A table with points";
    auto const doc = postgis::table_tilejson(spec_of(table));
    EXPECT_EQ(doc["description"], "public.points.geom");
}

TEST(tilejson, tiles_url_from_origin_with_query) {
    fixed_source const s{"points", {{"tilejson", "3.0.0"}, {"name", "points"}}};
    tiles::tile_source const* sources[] = {&s};
    auto const doc = tiles::make_tilejson(sources, {"https", "example.org:8080", "/points", "token=a"});
    EXPECT_EQ(doc["tiles"], nlohmann::json::array({"https://example.org:8080/points/{z}/{x}/{y}?token=a"}));
    EXPECT_EQ(doc["name"], "points");
}

TEST(tilejson, composite_merges_layers_bounds_and_names) {
    fixed_source const a{"a",
                         {{"name", "a"},
                          {"description", "one"},
                          {"bounds", {-10, -10, 0, 0}},
                          {"minzoom", 2},
                          {"maxzoom", 8},
                          {"vector_layers", {{{"id", "a"}}}},
                          {"foo", 1}}};
    fixed_source const b{"b",
                         {{"name", "b"},
                          {"description", "two"},
                          {"bounds", {-5, -20, 5, 5}},
                          {"minzoom", 4},
                          {"maxzoom", 12},
                          {"vector_layers", {{{"id", "b"}}}}}};
    tiles::tile_source const* sources[] = {&a, &b};
    auto const doc = tiles::make_tilejson(sources, {"http", "h", "/a,b", ""});
    EXPECT_EQ(doc["tilejson"], "3.0.0");
    EXPECT_EQ(doc["name"], "a,b");
    EXPECT_EQ(doc["description"], "one\ntwo");
    EXPECT_EQ(doc["bounds"], nlohmann::json::array({-10.0, -20.0, 5.0, 5.0}));
    EXPECT_EQ(doc["minzoom"], 2);
    EXPECT_EQ(doc["maxzoom"], 12);
    EXPECT_EQ(doc["vector_layers"].size(), 2U);
    EXPECT_FALSE(doc.contains("foo"));
    EXPECT_EQ(doc["tiles"][0], "http://h/a,b/{z}/{x}/{y}");
}

TEST(tilejson, composite_zooms_are_unlimited_when_one_source_is) {
    fixed_source const low{"low", {{"name", "low"}, {"maxzoom", 3}}};
    fixed_source const high{"high", {{"name", "high"}, {"minzoom", 4}}};
    tiles::tile_source const* sources[] = {&low, &high};
    auto const doc = tiles::make_tilejson(sources, {"http", "h", "/low,high", ""});
    EXPECT_FALSE(doc.contains("minzoom")) << doc.dump();
    EXPECT_FALSE(doc.contains("maxzoom")) << doc.dump();
}

TEST(catalog, entries_have_content_type_and_description) {
    tiles::catalog c;
    c.add(
        std::make_shared<fixed_source>("p", nlohmann::json{{"name", "p"}, {"description", "public.p.geom"}}));
    c.add(std::make_shared<fixed_source>("q", nlohmann::json{{"name", "Other name"}}));
    auto const doc = c.to_json();
    EXPECT_EQ(doc["tiles"]["p"],
              (nlohmann::json{{"content_type", "application/x-protobuf"}, {"description", "public.p.geom"}}));
    EXPECT_EQ(doc["tiles"]["q"]["name"], "Other name");
    EXPECT_THROW(c.add(std::make_shared<fixed_source>("p", nlohmann::json::object())), kachel::source_error);
}
