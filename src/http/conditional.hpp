#pragma once

#include "http/compression.hpp"
#include "http/response.hpp"
#include "tiles/tile_cache.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kachel::http {

/// Strong comparison of an ETag (quoted) against an If-None-Match list (`*` matches anything).
[[nodiscard]] bool matches_if_none_match(std::optional<std::string_view> header_value,
                                         std::string_view quoted_etag);

/// True for the content types kachel compresses (MVT and JSON); images are compressed already.
[[nodiscard]] bool is_compressible(std::string_view content_type) noexcept;

/// A 200 with an ETag: 304 when If-None-Match matches, 406 when no encoding is acceptable,
/// otherwise the body encoded as negotiated (Vary: Accept-Encoding when compressible).
[[nodiscard]] response content_response(request const& req, std::string body, std::string_view content_type,
                                        std::string const& etag, bool compressible, encoding preferred);

/// A single-source tile from shared bytes (already encoded with `used`): 304 on a matching
/// If-None-Match, 204 when empty, else the bytes without a copy.
[[nodiscard]] response shared_tile_response(request const& req,
                                            std::shared_ptr<tiles::tile_bytes const> bytes,
                                            std::string_view content_type, encoding used, bool compressible);

} // namespace kachel::http
