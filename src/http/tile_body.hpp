#pragma once

#include "tiles/tile_cache.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional/optional.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kachel::http {

/// A Beast body that is either text of its own or tile bytes shared with the cache: a cached
/// tile is written to the socket straight from the cache's memory, and a lent one straight from
/// where its source keeps it (in as many pieces as it has), without a copy.
struct tile_body {
    class value_type {
      public:
        value_type() = default;
        value_type& operator=(std::string text) {
            m_own = std::move(text);
            m_shared.reset();
            return *this;
        }
        /// Serves `bytes` (kept alive by this body until the response is gone).
        void share(std::shared_ptr<tiles::tile_bytes const> bytes) {
            m_shared = std::move(bytes);
            m_own.clear();
        }
        [[nodiscard]] std::size_t size() const noexcept { return m_shared ? m_shared->size() : m_own.size(); }
        [[nodiscard]] bool empty() const noexcept { return size() == 0; }
        void clear() noexcept {
            m_shared.reset();
            m_own.clear();
        }
        /// The bytes in pieces, when they are lent; else null.
        [[nodiscard]] std::vector<std::string_view> const* lent_pieces() const noexcept {
            return m_shared && m_shared->lent ? &m_shared->lent->pieces() : nullptr;
        }
        /// The bytes in one piece, when they are not lent.
        [[nodiscard]] std::string_view own() const noexcept {
            return m_shared ? std::string_view{m_shared->data} : std::string_view{m_own};
        }

      private:
        std::shared_ptr<tiles::tile_bytes const> m_shared;
        std::string m_own;
    };

    static std::uint64_t size(value_type const& body) noexcept { return body.size(); }

    class writer {
      public:
        /// Up to `batch` pieces at a time: as many as one `writev` takes from Asio.
        using const_buffers_type = std::span<boost::asio::const_buffer const>;

        template <bool isRequest, class Fields>
        writer(boost::beast::http::header<isRequest, Fields> const& /*header*/, value_type const& body)
            : m_body(body) {}

        static void init(boost::beast::error_code& ec) { ec = {}; }

        boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& ec) {
            ec = {};
            auto const* const pieces = m_body.lent_pieces();
            if (pieces == nullptr) {
                auto const bytes = m_body.own();
                m_batch[0] = boost::asio::const_buffer{bytes.data(), bytes.size()};
                return std::pair{const_buffers_type{m_batch.data(), 1}, false};
            }
            std::size_t count = 0;
            for (; count < m_batch.size() && m_next < pieces->size(); ++count, ++m_next) {
                auto const piece = (*pieces)[m_next];
                m_batch[count] = boost::asio::const_buffer{piece.data(), piece.size()};
            }
            if (count == 0) {
                return boost::none;
            }
            return std::pair{const_buffers_type{m_batch.data(), count}, m_next < pieces->size()};
        }

      private:
        static constexpr std::size_t batch = 64;
        value_type const& m_body;
        std::array<boost::asio::const_buffer, batch> m_batch{};
        std::size_t m_next = 0; ///< the lent piece to send next
    };
};

} // namespace kachel::http
