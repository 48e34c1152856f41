#pragma once

#include "tiles/tile_cache.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional/optional.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace kachel::http {

/// A Beast body that is either text of its own or tile bytes shared with the cache: a cached
/// tile is written to the socket straight from the cache's memory, without a copy.
struct tile_body {
    class value_type {
      public:
        value_type() = default;
        value_type& operator=(std::string text) {
            m_own = std::move(text);
            m_shared.reset();
            return *this;
        }
        /// Serves `bytes->bytes()` (kept alive by this body until the response is gone).
        void share(std::shared_ptr<tiles::tile_bytes const> bytes) {
            m_shared = std::move(bytes);
            m_own.clear();
        }
        [[nodiscard]] std::string_view view() const noexcept {
            return m_shared ? m_shared->bytes() : std::string_view{m_own};
        }
        [[nodiscard]] std::size_t size() const noexcept { return view().size(); }
        [[nodiscard]] bool empty() const noexcept { return view().empty(); }
        void clear() noexcept {
            m_shared.reset();
            m_own.clear();
        }

      private:
        std::shared_ptr<tiles::tile_bytes const> m_shared;
        std::string m_own;
    };

    static std::uint64_t size(value_type const& body) noexcept { return body.size(); }

    class writer {
      public:
        using const_buffers_type = boost::asio::const_buffer;

        template <bool isRequest, class Fields>
        writer(boost::beast::http::header<isRequest, Fields> const& /*header*/, value_type const& body)
            : m_body(body) {}

        static void init(boost::beast::error_code& ec) { ec = {}; }

        boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& ec) {
            ec = {};
            auto const bytes = m_body.view();
            return std::pair{const_buffers_type{bytes.data(), bytes.size()}, false};
        }

      private:
        value_type const& m_body;
    };
};

} // namespace kachel::http
