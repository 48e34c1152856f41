#pragma once

#include "http/handler.hpp"
#include "http/router.hpp"
#include "tiles/catalog.hpp"

namespace kachel::http {

/// `DELETE /cache/{ids}` (`purge_endpoint`): drops the cached tiles of the sources, all of them or
/// those in `bbox=w,s,e,n` within `minzoom`/`maxzoom`. With a purge token the request must carry
/// `Authorization: Bearer <token>` (401 otherwise); without one only loopback clients are
/// answered (403). Answers 200 with `{"sources": [...], "dropped": n}`.
[[nodiscard]] response answer_purge(request const& req, route const& target, tiles::catalog const& catalog,
                                    request_context const& ctx);

} // namespace kachel::http
