// libFuzzer target: any query string becomes a JSON object that serialises (invalid UTF-8
// replaced) and parses back to the same object, as kachel sends it to PostgreSQL.

#include "http/query_params.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view const input{reinterpret_cast<char const*>(data), size};
    auto const value = kachel::http::query_to_json(input);
    if (!value.is_object()) {
        std::abort();
    }
    auto const text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto const again = nlohmann::json::parse(text);
    // Keys that differ only in invalid UTF-8 may merge into one; nothing else changes.
    if (!again.is_object() || again.size() > value.size()) {
        std::abort();
    }
    static_cast<void>(kachel::http::contains_nul(value));
    return 0;
}
