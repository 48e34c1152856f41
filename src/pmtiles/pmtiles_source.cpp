#include "pmtiles/pmtiles_source.hpp"

#include "core/error.hpp"
#include "tiles/blocking_read.hpp"
#include "tiles/tile_format.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <tuple>
#include <utility>

namespace kachel::pmtiles {

namespace asio = boost::asio;

namespace {

template <class T>
T little_endian(std::string_view bytes, std::size_t at) noexcept {
    std::make_unsigned_t<T> value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        value |= static_cast<std::make_unsigned_t<T>>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
    }
    return static_cast<T>(value);
}

double degrees(std::string_view bytes, std::size_t at) noexcept {
    return static_cast<double>(little_endian<std::int32_t>(bytes, at)) / 10'000'000.0;
}

/// Reads the varints of a directory in order.
class varint_reader {
  public:
    explicit varint_reader(std::string_view bytes) noexcept : m_bytes(bytes) {}

    std::uint64_t next() {
        std::uint64_t value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (m_at >= m_bytes.size()) {
                throw source_error{"directory ends in the middle of a number"};
            }
            auto const byte = static_cast<unsigned char>(m_bytes[m_at++]);
            value |= static_cast<std::uint64_t>(byte & 0x7fU) << shift;
            if ((byte & 0x80U) == 0) {
                return value;
            }
        }
        throw source_error{"directory holds a number longer than 64 bits"};
    }

  private:
    std::string_view m_bytes;
    std::size_t m_at = 0;
};

/// PMTiles compression codes as content encodings; nullopt for one kachel cannot decode.
std::optional<tiles::encoding> encoding_of(std::uint8_t code) noexcept {
    switch (code) {
    case 0:
    case 1:
        return tiles::encoding::identity;
    case 2:
        return tiles::encoding::gzip;
    case 3:
        return tiles::encoding::brotli;
    case 4:
        return tiles::encoding::zstd;
    default:
        return std::nullopt;
    }
}

std::string_view type_of(std::uint8_t tile_type) noexcept {
    switch (tile_type) {
    case 2:
        return "image/png";
    case 3:
        return "image/jpeg";
    case 4:
        return "image/webp";
    case 5:
        return "image/avif";
    case 6:
        return "application/vnd.maplibre-tile";
    default:
        return tiles::mvt_type;
    }
}

/// Directory lookups go at most this deep (the root and three levels of leaves).
constexpr int max_depth = 4;

} // namespace

header parse_header(std::string_view bytes) {
    if (bytes.size() < header_size || bytes.substr(0, 7) != "PMTiles") {
        throw source_error{"it does not start with a PMTiles header"};
    }
    auto const version = static_cast<unsigned char>(bytes[7]);
    if (version != 3) {
        throw source_error{fmt::format("it is PMTiles version {}; kachel reads version 3 (convert it with "
                                       "`pmtiles convert`)",
                                       version)};
    }
    header h;
    h.root_offset = little_endian<std::uint64_t>(bytes, 8);
    h.root_length = little_endian<std::uint64_t>(bytes, 16);
    h.metadata_offset = little_endian<std::uint64_t>(bytes, 24);
    h.metadata_length = little_endian<std::uint64_t>(bytes, 32);
    h.leaf_offset = little_endian<std::uint64_t>(bytes, 40);
    h.leaf_length = little_endian<std::uint64_t>(bytes, 48);
    h.data_offset = little_endian<std::uint64_t>(bytes, 56);
    h.data_length = little_endian<std::uint64_t>(bytes, 64);
    h.addressed_tiles = little_endian<std::uint64_t>(bytes, 72);
    h.tile_entries = little_endian<std::uint64_t>(bytes, 80);
    h.tile_contents = little_endian<std::uint64_t>(bytes, 88);
    h.clustered = bytes[96] == 1;
    h.internal_compression = static_cast<std::uint8_t>(bytes[97]);
    h.tile_compression = static_cast<std::uint8_t>(bytes[98]);
    h.tile_type = static_cast<std::uint8_t>(bytes[99]);
    h.min_zoom = static_cast<std::uint8_t>(bytes[100]);
    h.max_zoom = static_cast<std::uint8_t>(bytes[101]);
    h.min_lon = degrees(bytes, 102);
    h.min_lat = degrees(bytes, 106);
    h.max_lon = degrees(bytes, 110);
    h.max_lat = degrees(bytes, 114);
    h.center_zoom = static_cast<std::uint8_t>(bytes[118]);
    h.center_lon = degrees(bytes, 119);
    h.center_lat = degrees(bytes, 123);
    return h;
}

std::vector<entry> parse_directory(std::string_view bytes) {
    varint_reader in{bytes};
    auto const count = in.next();
    // Each entry takes at least four bytes: a count beyond that is damage, not a directory.
    if (count > bytes.size()) {
        throw source_error{"directory claims more entries than it has bytes"};
    }
    std::vector<entry> out(count);
    std::uint64_t id = 0;
    for (auto& e : out) {
        id += in.next();
        e.tile_id = id;
    }
    for (auto& e : out) {
        e.run_length = static_cast<std::uint32_t>(in.next());
    }
    for (auto& e : out) {
        e.length = static_cast<std::uint32_t>(in.next());
    }
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto const value = in.next();
        // 0 after the first entry: right after the previous entry's bytes.
        out[i].offset = value == 0 && i > 0 ? out[i - 1].offset + out[i - 1].length : value - 1;
    }
    return out;
}

entry const* find_entry(std::span<entry const> entries, std::uint64_t id) noexcept {
    // The last entry whose first tile id is at most `id`.
    auto const after =
        std::upper_bound(entries.begin(), entries.end(), id,
                         [](std::uint64_t value, entry const& e) { return value < e.tile_id; });
    if (after == entries.begin()) {
        return nullptr;
    }
    auto const& e = *std::prev(after);
    if (e.run_length == 0 || id - e.tile_id < e.run_length) {
        return &e;
    }
    return nullptr;
}

std::uint64_t tile_id(tile_coord coord) noexcept {
    // Tiles of the zooms below: (4^z - 1) / 3.
    std::uint64_t id = ((std::uint64_t{1} << (2 * coord.z)) - 1) / 3;
    std::uint64_t const n = std::uint64_t{1} << coord.z;
    std::uint64_t x = coord.x;
    std::uint64_t y = coord.y;
    std::uint64_t d = 0;
    for (std::uint64_t s = n / 2; s > 0; s /= 2) {
        std::uint64_t const rx = (x & s) > 0 ? 1 : 0;
        std::uint64_t const ry = (y & s) > 0 ? 1 : 0;
        d += s * s * ((3 * rx) ^ ry);
        // Rotate the quadrant so the curve continues.
        if (ry == 0) {
            if (rx == 1) {
                x = n - 1 - x;
                y = n - 1 - y;
            }
            std::swap(x, y);
        }
    }
    return id + d;
}

pmtiles_source::pmtiles_source(std::string id, std::string path, asio::any_io_executor blocking,
                               std::size_t directory_cache_bytes)
    : m_id(std::move(id)), m_path(std::move(path)), m_blocking(std::move(blocking)),
      m_cache_limit(directory_cache_bytes) {
    auto const fail = [this](std::string_view what) {
        return source_error{fmt_error("PMTiles file {} (source {}): {}", m_path, m_id, what)};
    };
    m_fd = ::open(m_path.c_str(), O_RDONLY | O_CLOEXEC); // NOLINT(cppcoreguidelines-pro-type-vararg): POSIX
    if (m_fd < 0) {
        throw fail(fmt::format("cannot open it: {}; give the path of a PMTiles file kachel can read",
                               std::strerror(errno)));
    }
    try {
        struct stat st {};
        if (::fstat(m_fd, &st) != 0) {
            throw source_error{std::strerror(errno)};
        }
        m_size = static_cast<std::uint64_t>(st.st_size);
        m_header = parse_header(read_range(0, std::min<std::uint64_t>(m_size, header_size)));
        auto const& h = m_header;
        for (auto const& [name, offset, length] :
             {std::tuple{"root directory", h.root_offset, h.root_length},
              std::tuple{"metadata", h.metadata_offset, h.metadata_length},
              std::tuple{"leaf directories", h.leaf_offset, h.leaf_length},
              std::tuple{"tile data", h.data_offset, h.data_length}}) {
            if (offset > m_size || length > m_size - offset) {
                throw source_error{fmt::format("its {} ({} bytes at {}) lies beyond the end of the file ({} "
                                               "bytes): the file is truncated",
                                               name, length, offset, m_size)};
            }
        }
        if (!encoding_of(h.internal_compression) || !encoding_of(h.tile_compression)) {
            throw source_error{fmt::format("it uses compression code {}, which kachel does not know",
                                           std::max(h.internal_compression, h.tile_compression))};
        }
        m_root = parse_directory(internal(read_range(h.root_offset, h.root_length)));
        nlohmann::json metadata = nlohmann::json::object();
        if (h.metadata_length > 0) {
            metadata = nlohmann::json::parse(internal(read_range(h.metadata_offset, h.metadata_length)),
                                             nullptr, false);
            if (!metadata.is_object()) {
                spdlog::warn("PMTiles file {}: its metadata is not a JSON object; the TileJSON has only the "
                             "header's values",
                             m_path);
                metadata = nlohmann::json::object();
            }
        }
        // The metadata's keys (name, attribution, vector_layers, ...), then the header's zooms,
        // bounds and center, which describe the tiles themselves.
        m_tilejson = std::move(metadata);
        m_tilejson["tilejson"] = "3.0.0";
        m_tilejson["minzoom"] = h.min_zoom;
        m_tilejson["maxzoom"] = h.max_zoom;
        m_tilejson["bounds"] = {h.min_lon, h.min_lat, h.max_lon, h.max_lat};
        m_tilejson["center"] = {h.center_lon, h.center_lat, h.center_zoom};
    } catch (source_error const& e) {
        ::close(m_fd);
        throw fail(e.what());
    } catch (std::exception const& e) { // a directory or metadata that does not decompress
        ::close(m_fd);
        throw fail(fmt::format("{}; the file is damaged", e.what()));
    }
    m_zooms = tiles::zooms_of(m_tilejson);
    m_content_type = type_of(m_header.tile_type);
    spdlog::info("Publishing PMTiles file {} ({}, {} tiles, zooms {}-{}) as source '{}'", m_path,
                 m_content_type, m_header.addressed_tiles, m_header.min_zoom, m_header.max_zoom, m_id);
}

pmtiles_source::~pmtiles_source() {
    ::close(m_fd);
}

std::string pmtiles_source::read_range(std::uint64_t offset, std::uint64_t length) const {
    std::string out(length, '\0');
    std::size_t done = 0;
    while (done < out.size()) {
        auto const n = ::pread(m_fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            throw source_error{n == 0 ? std::string{"the file ends early"}
                                      : std::string{std::strerror(errno)}};
        }
        done += static_cast<std::size_t>(n);
    }
    return out;
}

std::string pmtiles_source::internal(std::string bytes) const {
    auto const e = *encoding_of(m_header.internal_compression);
    if (e == tiles::encoding::identity) {
        return bytes;
    }
    return tiles::decompress(bytes, e);
}

std::shared_ptr<std::vector<entry> const> pmtiles_source::leaf(std::uint64_t offset,
                                                               std::uint32_t length) const {
    {
        std::lock_guard const lock{m_mutex};
        if (auto const it = m_leaves.find(offset); it != m_leaves.end()) {
            m_recent.splice(m_recent.end(), m_recent, it->second.position);
            return it->second.entries;
        }
    }
    if (length > m_header.leaf_length || offset > m_header.leaf_length - length) {
        throw source_error{"a directory entry points outside the leaf directories"};
    }
    auto entries = std::make_shared<std::vector<entry> const>(
        parse_directory(internal(read_range(m_header.leaf_offset + offset, length))));
    std::size_t const bytes = entries->size() * sizeof(entry) + 64;
    std::lock_guard const lock{m_mutex};
    if (!m_leaves.contains(offset) && bytes <= m_cache_limit) {
        while (m_cache_bytes + bytes > m_cache_limit && !m_recent.empty()) {
            auto const oldest = m_leaves.find(m_recent.front());
            m_cache_bytes -= oldest->second.bytes;
            m_leaves.erase(oldest);
            m_recent.pop_front();
        }
        m_recent.push_back(offset);
        m_leaves.emplace(offset, cached_leaf{entries, bytes, std::prev(m_recent.end())});
        m_cache_bytes += bytes;
    }
    return entries;
}

tiles::tile_result pmtiles_source::read(tile_coord coord) const {
    std::string failure;
    try {
        auto const id = tile_id(coord);
        std::span<entry const> directory = m_root;
        std::shared_ptr<std::vector<entry> const> held;
        for (int depth = 0; depth < max_depth; ++depth) {
            auto const* e = find_entry(directory, id);
            if (e == nullptr) {
                return {};
            }
            if (e->run_length > 0) {
                if (e->length > m_header.data_length || e->offset > m_header.data_length - e->length) {
                    throw source_error{"a tile entry points outside the tile data"};
                }
                tiles::tile_result out;
                out.data = read_range(m_header.data_offset + e->offset, e->length);
                // gzip goes out as stored (the HTTP layer keeps both forms); the others are
                // decoded here.
                auto const stored = *encoding_of(m_header.tile_compression);
                if (stored == tiles::encoding::brotli || stored == tiles::encoding::zstd) {
                    out.data = tiles::decompress(out.data, stored);
                }
                return out;
            }
            held = leaf(e->offset, e->length);
            directory = *held;
        }
        throw source_error{"its leaf directories nest deeper than the format allows"};
    } catch (std::exception const& e) {
        failure = e.what();
    }
    return tiles::tile_result{{},
                              tiles::tile_errc::internal,
                              fmt::format("PMTiles file {}: reading tile {}/{}/{} failed: {}", m_path,
                                          coord.z, coord.x, coord.y, failure),
                              {}};
}

asio::awaitable<tiles::tile_result> pmtiles_source::async_get_tile(tile_coord coord,
                                                                   std::string const& /*query*/) const {
    co_return co_await tiles::read_blocking(m_blocking, [this, coord] { return read(coord); });
}

} // namespace kachel::pmtiles
