#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

namespace kachel::http {

/// The URL query string (`a=1&b=x`, without `?`) as a JSON object for function sources
/// (martin-compat 3.3): keys and values are form-decoded (`+` is a space, `%XX` a byte); a value
/// that parses as JSON keeps its JSON type (`42`, `true`, `[1,2]`, `{"x":1}`, `null`), any other
/// is a string. A repeated key keeps its last value. Never throws; an empty query gives `{}`.
[[nodiscard]] nlohmann::json query_to_json(std::string_view query);

/// True when a key or string value anywhere in `value` holds a NUL character, which PostgreSQL's
/// json/jsonb cannot hold (the function would fail): such queries are refused with a 400.
[[nodiscard]] bool contains_nul(nlohmann::json const& value) noexcept;

} // namespace kachel::http
