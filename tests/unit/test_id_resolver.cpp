#include "tiles/id_resolver.hpp"

#include <gtest/gtest.h>

using kachel::tiles::id_resolver;
using kachel::tiles::is_reserved_id;
using kachel::tiles::sanitize_id;

TEST(sanitize_id, keeps_letters_digits_underscore_dot_dash) {
    EXPECT_EQ(sanitize_id("Ab_9.x-y"), "Ab_9.x-y");
}

TEST(sanitize_id, replaces_each_other_character_with_one_dash) {
    // Martin's fixture: table `. Points" \ \' \"` 'quote` -> .-Points-----------quote
    EXPECT_EQ(sanitize_id(". Points\" \\ \\' \\\" 'quote"), ".-Points-----------quote");
    EXPECT_EQ(sanitize_id("\"function.withweired$*;_ characters"), "-function.withweired---_-characters");
}

TEST(sanitize_id, replaces_a_multibyte_character_with_a_single_dash) {
    EXPECT_EQ(sanitize_id("stra\xc3\x9f"
                          "e"),
              "stra-e"); // ß, 2 bytes
    EXPECT_EQ(sanitize_id("a\xf0\x9f\x97\xba"
                          "b"),
              "a-b"); // 🗺, 4 bytes
}

TEST(id_resolver, gives_the_bare_name_to_the_first_owner) {
    id_resolver ids;
    EXPECT_EQ(ids.resolve("points", "db.public.points.geom"), "points");
}

TEST(id_resolver, numbers_later_owners_of_the_same_name) {
    id_resolver ids;
    EXPECT_EQ(ids.resolve("t", "db.a.t.geom"), "t");
    EXPECT_EQ(ids.resolve("t", "db.b.t.geom"), "t.1");
    EXPECT_EQ(ids.resolve("t", "db.c.t.geom"), "t.2");
}

TEST(id_resolver, is_idempotent_for_the_same_signature) {
    id_resolver ids;
    EXPECT_EQ(ids.resolve("t", "db.a.t.geom"), "t");
    EXPECT_EQ(ids.resolve("t", "db.b.t.geom"), "t.1");
    EXPECT_EQ(ids.resolve("t", "db.a.t.geom"), "t");
    EXPECT_EQ(ids.resolve("t", "db.b.t.geom"), "t.1");
}

TEST(id_resolver, renames_reserved_words) {
    EXPECT_TRUE(is_reserved_id("catalog"));
    EXPECT_TRUE(is_reserved_id("health"));
    EXPECT_FALSE(is_reserved_id("countries"));
    id_resolver ids;
    EXPECT_EQ(ids.resolve("catalog", "db.public.catalog.geom"), "catalog.1");
    EXPECT_EQ(ids.resolve("health", "db.public.health.geom"), "health.1");
}

TEST(id_resolver, sanitises_before_comparing) {
    id_resolver ids;
    EXPECT_EQ(ids.resolve("a b", "db.s.a b.geom"), "a-b");
    EXPECT_EQ(ids.resolve("a-b", "db.s.a-b.geom"), "a-b.1");
}
