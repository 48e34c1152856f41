#include "pmtiles/pmtiles_source.hpp"

#include "core/error.hpp"
#include "core/mapped_file.hpp"
#include "tiles/blocking_read.hpp"
#include "tiles/etag.hpp"
#include "tiles/tile_format.hpp"
#include "tiles/tile_ranges.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <tuple>
#include <unordered_map>
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

std::string_view type_name(std::uint8_t tile_type) noexcept {
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
    return tiles::tile_id(coord);
}

/// Raised when an answer comes from another version of a remote archive than the one asked for.
class archive_changed : public source_error {
  public:
    using source_error::source_error;
};

/// The server holding a remote archive failed: the tile answers 502, and later requests retry.
class upstream_failure : public source_error {
  public:
    using source_error::source_error;
};

class range_reader {
  public:
    range_reader() = default;
    range_reader(range_reader const&) = delete;
    range_reader& operator=(range_reader const&) = delete;
    virtual ~range_reader() = default;

    /// The start of an archive: up to `length` bytes of it, its size, and its version's tag.
    struct start {
        std::string bytes;
        std::uint64_t size = 0;
        std::string version;
    };
    [[nodiscard]] virtual asio::awaitable<start> open(std::uint64_t length) = 0;

    /// Exactly `length` bytes at `offset` of the version `version` (as open gave it).
    /// \throws archive_changed when the archive is another version now
    [[nodiscard]] virtual asio::awaitable<std::string> read(std::uint64_t offset, std::uint64_t length,
                                                            std::string const& version) = 0;

    /// The same bytes if they can be had without waiting (a local file's pages in the page
    /// cache), so that the caller's event loop can read them; otherwise nothing.
    [[nodiscard]] virtual std::optional<std::string> read_at_hand(std::uint64_t /*offset*/,
                                                                  std::uint64_t /*length*/) {
        return std::nullopt;
    }

    /// The same bytes where they are (a mapped file's pages, all in memory), to be sent without
    /// a copy; otherwise nothing.
    [[nodiscard]] virtual std::optional<tiles::lent_bytes> lend(std::uint64_t /*offset*/,
                                                                std::uint64_t /*length*/) const {
        return std::nullopt;
    }
};

namespace {

/// A local file, read with `pread` (on the blocking pool, or on the caller's event loop when
/// the pages are in the page cache). A file that nothing can write is mapped too, and its tiles
/// lent from the mapping. An archive replaced by a rename keeps being read from the file that was
/// opened.
class file_reader final : public range_reader {
  public:
    explicit file_reader(std::string const& path) {
        m_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); // NOLINT(cppcoreguidelines-pro-type-vararg): POSIX
        if (m_fd < 0) {
            throw source_error{fmt::format(
                "cannot open it: {}; give the path of a PMTiles file kachel can read", std::strerror(errno))};
        }
        struct stat st {};
        // A mapping is safe only where the file cannot shrink under it (see mapped_file).
        if (nothing_can_write(path) && ::fstat(m_fd, &st) == 0) {
            m_map = mapped_file::map(m_fd, static_cast<std::uint64_t>(st.st_size));
        }
    }
    ~file_reader() override { ::close(m_fd); }
    file_reader(file_reader const&) = delete;
    file_reader& operator=(file_reader const&) = delete;

    asio::awaitable<start> open(std::uint64_t length) override {
        struct stat st {};
        if (::fstat(m_fd, &st) != 0) {
            throw source_error{std::strerror(errno)};
        }
        start out;
        out.size = static_cast<std::uint64_t>(st.st_size);
        out.bytes = read_now(0, std::min(out.size, length));
        co_return out;
    }

    asio::awaitable<std::string> read(std::uint64_t offset, std::uint64_t length,
                                      std::string const& /*version*/) override {
        co_return read_now(offset, length);
    }

    [[nodiscard]] std::optional<tiles::lent_bytes> lend(std::uint64_t offset,
                                                        std::uint64_t length) const override {
        if (!m_map || offset > m_map->size() || length > m_map->size() - offset ||
            !m_map->resident(offset, length)) {
            return std::nullopt;
        }
        return tiles::lent_bytes{{m_map->bytes(offset, length)}, m_map};
    }

    [[nodiscard]] std::optional<std::string> read_at_hand(std::uint64_t offset,
                                                          std::uint64_t length) override {
        if (!m_nowait.load(std::memory_order_relaxed)) {
            return std::nullopt;
        }
        std::string out(length, '\0');
        iovec part{out.data(), out.size()};
        // RWF_NOWAIT: the bytes from the page cache, or EAGAIN rather than a wait for the disk. A
        // part of them (a short count) goes the slow way whole.
        auto const n = ::preadv2(m_fd, &part, 1, static_cast<off_t>(offset), RWF_NOWAIT);
        if (n < 0 && errno == EOPNOTSUPP) {
            m_nowait.store(false, std::memory_order_relaxed); // a file system without it
        }
        if (n != static_cast<ssize_t>(length)) {
            return std::nullopt;
        }
        return out;
    }

  private:
    [[nodiscard]] std::string read_now(std::uint64_t offset, std::uint64_t length) const {
        std::string out(length, '\0');
        std::size_t done = 0;
        while (done < out.size()) {
            auto const n =
                ::pread(m_fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
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

    int m_fd = -1;
    std::atomic<bool> m_nowait{true};
    std::shared_ptr<mapped_file const> m_map;
};

/// What a status other than 206 means for a range request, and the fix.
std::string status_problem(unsigned status) {
    switch (status) {
    case 401:
        return "the server asks for credentials (401 Unauthorized); kachel sends none: make the archive "
               "readable without them";
    case 403:
        return "the server refuses access (403 Forbidden): check the URL, and that the server lets anyone "
               "read "
               "the archive";
    case 404:
        return "the server has no such file (404 Not Found): check the URL";
    case 416:
        return "the server says the range lies beyond the end of the file (416): the archive is truncated";
    default:
        return fmt::format("the server answered {} to a range request", status);
    }
}

/// An archive at an `http(s)://` URL, read with range requests. Its version is its ETag: a
/// strong one goes out as `If-Match`; a weak one (which `If-Match` never matches) is compared
/// with each answer's.
class http_reader final : public range_reader {
  public:
    http_reader(std::shared_ptr<remote::http_client> client, remote::url where)
        : m_client(std::move(client)), m_url(std::move(where)) {}

    asio::awaitable<start> open(std::uint64_t length) override {
        auto reply = co_await m_client->get_range(m_url, 0, length, {});
        check(reply);
        start out;
        out.size = reply.total != 0 ? reply.total : reply.body.size();
        out.version = reply.etag;
        out.bytes = std::move(reply.body);
        if (out.version.empty()) {
            spdlog::warn("{}: the server sends no ETag, so a replaced archive cannot be told from the one "
                         "opened: replace it under a new URL, or serve it with ETags",
                         m_url.shown());
        }
        co_return out;
    }

    asio::awaitable<std::string> read(std::uint64_t offset, std::uint64_t length,
                                      std::string const& version) override {
        bool const strong = !version.empty() && !version.starts_with("W/");
        // (The condition stays out of the co_await expression: GCC 12 mishandles temporaries there.)
        std::string if_match;
        if (strong) {
            if_match = version;
        }
        auto reply = co_await m_client->get_range(m_url, offset, length, std::move(if_match));
        if (reply.status == 412 || (reply.status == 206 && reply.etag != version)) {
            throw archive_changed{fmt::format("the archive changed (ETag {} instead of {})",
                                              reply.etag.empty() ? "none" : reply.etag, version)};
        }
        check(reply);
        if (reply.body.size() != length) {
            throw upstream_failure{
                fmt::format("the server sent {} bytes for a range of {}", reply.body.size(), length)};
        }
        co_return std::move(reply.body);
    }

  private:
    static void check(remote::range_reply const& reply) {
        if (reply.whole) {
            throw upstream_failure{
                "the server answered 200 with the whole file instead of the range asked for: it does not "
                "serve byte ranges (an nginx `max_ranges 0`, or a proxy in between); serve the archive from "
                "a "
                "server that does"};
        }
        if (reply.status != 206 && reply.status != 200) {
            throw upstream_failure{status_problem(reply.status)};
        }
    }

    std::shared_ptr<remote::http_client> m_client;
    remote::url m_url;
};

/// The bytes a PMTiles reader asks for first: the header and, as the format advises, the root
/// directory with it.
constexpr std::uint64_t first_read = 16'384;

} // namespace

struct archive_version {
    explicit archive_version(std::size_t limit) : cache_limit(limit) {}

    std::string tag; ///< the ETag of a remote archive; empty for a local file
    header h;
    std::vector<entry> root;
    nlohmann::json tilejson;

    /// Leaf directories by offset, least recently used first out.
    struct cached_leaf {
        std::shared_ptr<std::vector<entry> const> entries;
        std::size_t bytes = 0;
        std::list<std::uint64_t>::iterator position;
    };
    std::size_t cache_limit;
    mutable std::mutex mutex;
    mutable std::size_t cache_bytes = 0;
    mutable std::list<std::uint64_t> recent;
    mutable std::unordered_map<std::uint64_t, cached_leaf> leaves;

    /// ETags of the tiles lent from a mapped file, by offset.
    mutable tiles::etag_memo etags;

    /// The leaf directory at `offset` if it is in the cache (now the most recently used).
    [[nodiscard]] std::shared_ptr<std::vector<entry> const> leaf_at_hand(std::uint64_t offset) const {
        std::lock_guard const lock{mutex};
        auto const it = leaves.find(offset);
        if (it == leaves.end()) {
            return nullptr;
        }
        recent.splice(recent.end(), recent, it->second.position);
        return it->second.entries;
    }

    /// Decompresses a directory or the metadata.
    [[nodiscard]] std::string internal(std::string bytes) const {
        auto const e = *encoding_of(h.internal_compression);
        if (e == tiles::encoding::identity) {
            return bytes;
        }
        return tiles::decompress(bytes, e);
    }
};

pmtiles_source::pmtiles_source(std::string id, std::string const& location, asio::any_io_executor blocking,
                               std::size_t directory_cache_bytes, std::shared_ptr<remote::http_client> client,
                               std::function<void()> on_change)
    : m_id(std::move(id)), m_cache_name(tiles::instance_name(m_id)), m_blocking(std::move(blocking)),
      m_cache_limit(directory_cache_bytes), m_on_change(std::move(on_change)) {
    bool const remote = client != nullptr;
    m_remote = remote;
    auto const* const kind = remote ? "PMTiles archive" : "PMTiles file";
    m_location = location;
    auto const fail = [&](std::string_view what) {
        return source_error{fmt_error("{} {} (source {}): {}", kind, m_location, m_id, what)};
    };
    try {
        if (remote) {
            auto where = remote::parse_url(location);
            m_location = where.shown();
            m_reader = std::make_unique<http_reader>(std::move(client), std::move(where));
        } else {
            m_reader = std::make_unique<file_reader>(location);
        }
    } catch (error const& e) { // a file that cannot be opened, a URL that does not parse
        throw fail(e.what());
    }
    // The reads run on the blocking pool; only text comes back (an exception object shared
    // between threads would be freed on either).
    auto const first = asio::co_spawn(m_blocking, open_version(), asio::use_future).get();
    if (!first.version) {
        throw fail(first.failure);
    }
    m_current = first.version;
    auto const& h = m_current->h;
    m_tilejson = m_current->tilejson;
    m_zooms = tiles::zooms_of(m_tilejson);
    m_content_type = type_name(h.tile_type);
    spdlog::info("Publishing {} {} ({}, {} tiles, zooms {}-{}) as source '{}'", kind, m_location,
                 m_content_type, h.addressed_tiles, h.min_zoom, h.max_zoom, m_id);
}

pmtiles_source::~pmtiles_source() = default;

header pmtiles_source::archive_header() const {
    return current()->h;
}

std::shared_ptr<archive_version const> pmtiles_source::current() const {
    std::lock_guard const lock{m_mutex};
    return m_current;
}

asio::awaitable<pmtiles_source::opened> pmtiles_source::open_version() const {
    std::shared_ptr<archive_version const> version;
    try {
        // (Not inside the braces of opened{...}: GCC 12 frees such a temporary twice.)
        version = co_await load();
    } catch (error const& e) { // source_error, request_error
        co_return opened{nullptr, e.what()};
    } catch (std::exception const& e) { // a directory or metadata that does not decompress
        co_return opened{nullptr, fmt::format("{}; the file is damaged", e.what())};
    }
    co_return opened{std::move(version), {}};
}

asio::awaitable<std::shared_ptr<archive_version const>> pmtiles_source::load() const {
    auto first = co_await m_reader->open(first_read);
    auto v = std::make_shared<archive_version>(m_cache_limit);
    v->tag = std::move(first.version);
    v->h = parse_header(first.bytes);
    auto const& h = v->h;
    auto const size = first.size;
    for (auto const& [name, offset, length] : {std::tuple{"root directory", h.root_offset, h.root_length},
                                               std::tuple{"metadata", h.metadata_offset, h.metadata_length},
                                               std::tuple{"leaf directories", h.leaf_offset, h.leaf_length},
                                               std::tuple{"tile data", h.data_offset, h.data_length}}) {
        if (offset > size || length > size - offset) {
            throw source_error{fmt::format("its {} ({} bytes at {}) lies beyond the end of the file ({} "
                                           "bytes): the file is truncated",
                                           name, length, offset, size)};
        }
    }
    if (!encoding_of(h.internal_compression) || !encoding_of(h.tile_compression)) {
        throw source_error{fmt::format("it uses compression code {}, which kachel does not know",
                                       std::max(h.internal_compression, h.tile_compression))};
    }
    // The root usually came with the header.
    // (No co_await inside a conditional expression: GCC 12 miscompiles it.)
    std::string root;
    if (h.root_offset + h.root_length <= first.bytes.size()) {
        root = first.bytes.substr(h.root_offset, h.root_length);
    } else {
        root = co_await m_reader->read(h.root_offset, h.root_length, v->tag);
    }
    v->root = parse_directory(v->internal(std::move(root)));
    nlohmann::json metadata = nlohmann::json::object();
    if (h.metadata_length > 0) {
        auto bytes = co_await m_reader->read(h.metadata_offset, h.metadata_length, v->tag);
        metadata = nlohmann::json::parse(v->internal(std::move(bytes)), nullptr, false);
        if (!metadata.is_object()) {
            spdlog::warn(
                "PMTiles {}: its metadata is not a JSON object; the TileJSON has only the header's values",
                m_location);
            metadata = nlohmann::json::object();
        }
    }
    // The metadata's keys (name, attribution, vector_layers, ...), then the header's zooms,
    // bounds and center, which describe the tiles themselves.
    v->tilejson = std::move(metadata);
    v->tilejson["tilejson"] = "3.0.0";
    v->tilejson["minzoom"] = h.min_zoom;
    v->tilejson["maxzoom"] = h.max_zoom;
    v->tilejson["bounds"] = {h.min_lon, h.min_lat, h.max_lon, h.max_lat};
    v->tilejson["center"] = {h.center_lon, h.center_lat, h.center_zoom};
    co_return v;
}

asio::awaitable<void> pmtiles_source::switch_from(std::shared_ptr<archive_version const> old) const {
    if (current() != old) {
        co_return; // another request switched already
    }
    auto fresh = co_await load();
    {
        std::lock_guard const lock{m_mutex};
        if (m_current != old) {
            co_return;
        }
        m_current = fresh;
    }
    spdlog::info("PMTiles archive {} (source {}) changed: ETag {} instead of {}; serving the new version",
                 m_location, m_id, fresh->tag, old->tag);
    if (fresh->tilejson != m_tilejson) {
        spdlog::warn(
            "PMTiles archive {} (source {}): the new version's metadata differs; its TileJSON stays as "
            "at startup until kachel restarts",
            m_location, m_id);
    }
    if (m_on_change) {
        m_on_change();
    }
}

asio::awaitable<void> pmtiles_source::revalidate() const {
    auto const v = current();
    if (!m_remote || v->tag.empty()) {
        co_return; // a file is watched on disk; without an ETag a new version cannot be told
    }
    std::string failure;
    try {
        (void)co_await m_reader->read(0, header_size, v->tag);
        co_return; // the same version
    } catch (archive_changed const&) {
    } catch (std::exception const& e) {
        failure = e.what();
    }
    if (!failure.empty()) {
        spdlog::warn("PMTiles archive {} (source {}): asking whether it changed failed: {}; serving the "
                     "version at hand, and asking again later",
                     m_location, m_id, failure);
        co_return;
    }
    try {
        co_await switch_from(v);
    } catch (std::exception const& e) {
        failure = e.what();
    }
    if (!failure.empty()) {
        spdlog::warn("PMTiles archive {} (source {}) changed, but its new version cannot be read: {}; "
                     "tiles not cached answer 502 until it can",
                     m_location, m_id, failure);
    }
}

asio::awaitable<std::string> pmtiles_source::internal(archive_version const& v, std::uint64_t offset,
                                                      std::uint64_t length) const {
    auto bytes = co_await m_reader->read(offset, length, v.tag);
    co_return v.internal(std::move(bytes));
}

asio::awaitable<std::shared_ptr<std::vector<entry> const>>
pmtiles_source::leaf(archive_version const& v, std::uint64_t offset, std::uint32_t length) const {
    if (auto held = v.leaf_at_hand(offset)) {
        co_return held;
    }
    if (length > v.h.leaf_length || offset > v.h.leaf_length - length) {
        throw source_error{"a directory entry points outside the leaf directories"};
    }
    auto const bytes_read = co_await internal(v, v.h.leaf_offset + offset, length);
    auto entries = std::make_shared<std::vector<entry> const>(parse_directory(bytes_read));
    std::size_t const bytes = entries->size() * sizeof(entry) + 64;
    std::lock_guard const lock{v.mutex};
    if (!v.leaves.contains(offset) && bytes <= v.cache_limit) {
        while (v.cache_bytes + bytes > v.cache_limit && !v.recent.empty()) {
            auto const oldest = v.leaves.find(v.recent.front());
            v.cache_bytes -= oldest->second.bytes;
            v.leaves.erase(oldest);
            v.recent.pop_front();
        }
        v.recent.push_back(offset);
        v.leaves.emplace(offset, archive_version::cached_leaf{entries, bytes, std::prev(v.recent.end())});
        v.cache_bytes += bytes;
    }
    co_return entries;
}

namespace {

/// Where a tile id leads in a version's directories, as far as the leaf directories at hand go.
struct step {
    enum { no_tile, tile, leaf_to_read } kind = no_tile;
    entry at; ///< the tile's entry, or the leaf directory's to read next
};

using loaded_leaf = std::pair<std::uint64_t, std::shared_ptr<std::vector<entry> const>>;

/// Walks from the root through the leaves in `loaded` (read by this request) or in the version's
/// cache, until the tile, its absence, or a leaf that is neither.
step walk(archive_version const& v, std::uint64_t id, std::span<loaded_leaf const> loaded) {
    std::span<entry const> directory = v.root;
    std::shared_ptr<std::vector<entry> const> held;
    for (int depth = 0; depth < max_depth; ++depth) {
        auto const* e = find_entry(directory, id);
        if (e == nullptr) {
            return {};
        }
        if (e->run_length > 0) {
            if (e->length > v.h.data_length || e->offset > v.h.data_length - e->length) {
                throw source_error{"a tile entry points outside the tile data"};
            }
            return {step::tile, *e};
        }
        auto const here = std::find_if(loaded.begin(), loaded.end(),
                                       [&](loaded_leaf const& l) { return l.first == e->offset; });
        held = here != loaded.end() ? here->second : v.leaf_at_hand(e->offset);
        if (!held) {
            return {step::leaf_to_read, *e};
        }
        directory = *held;
    }
    throw source_error{"its leaf directories nest deeper than the format allows"};
}

/// A tile as stored: gzip goes out as stored (the HTTP layer keeps both forms); brotli and zstd
/// are decoded here.
tiles::tile_result tile_of(archive_version const& v, std::string bytes) {
    tiles::tile_result out;
    out.data = std::move(bytes);
    auto const stored = *encoding_of(v.h.tile_compression);
    if (stored == tiles::encoding::brotli || stored == tiles::encoding::zstd) {
        out.data = tiles::decompress(out.data, stored);
    }
    return out;
}

} // namespace

asio::awaitable<tiles::tile_result> pmtiles_source::read_from(archive_version const& v,
                                                              tile_coord coord) const {
    auto const id = tile_id(coord);
    std::vector<loaded_leaf> loaded;
    for (int depth = 0; depth <= max_depth; ++depth) {
        auto const next = walk(v, id, loaded);
        if (next.kind == step::no_tile) {
            co_return tiles::tile_result{};
        }
        if (next.kind == step::tile) {
            auto bytes = co_await m_reader->read(v.h.data_offset + next.at.offset, next.at.length, v.tag);
            co_return tile_of(v, std::move(bytes));
        }
        auto entries = co_await leaf(v, next.at.offset, next.at.length);
        loaded.emplace_back(next.at.offset, std::move(entries));
    }
    throw source_error{"its leaf directories nest deeper than the format allows"};
}

std::optional<tiles::tile_result> pmtiles_source::read_at_hand(tile_coord coord) const {
    auto const v = current();
    try {
        auto const next = walk(*v, tile_id(coord), {});
        if (next.kind == step::no_tile) {
            return tiles::tile_result{};
        }
        if (next.kind == step::tile) {
            auto const offset = v->h.data_offset + next.at.offset;
            // Stored plain or gzip: sent from the mapping if it can be (brotli and zstd are decoded).
            auto const stored = *encoding_of(v->h.tile_compression);
            if (stored != tiles::encoding::brotli && stored != tiles::encoding::zstd) {
                if (auto lent = m_reader->lend(offset, next.at.length)) {
                    tiles::tile_result out;
                    if (!tiles::is_gzip(
                            lent->pieces().front())) { // (a gzip tile's ETag is its plain content's)
                        out.etag = v->etags.get(offset, lent->pieces());
                    }
                    out.lent = std::move(lent);
                    return out;
                }
            }
            if (auto bytes = m_reader->read_at_hand(offset, next.at.length)) {
                return tile_of(*v, std::move(*bytes));
            }
        }
    } catch (std::exception const&) { // the blocking path reads again, and reports it
    }
    return std::nullopt;
}

asio::awaitable<tiles::tile_result> pmtiles_source::read(tile_coord coord) const {
    auto const failed = [&](tiles::tile_errc errc, std::string_view what) {
        return tiles::tile_result::failed(errc, fmt::format("PMTiles {}: reading tile {}/{}/{} failed: {}",
                                                            m_location, coord.z, coord.x, coord.y, what));
    };
    // A change seen while reading switches to the new version and reads again; a third version
    // within one request is a server that keeps changing: retry later.
    for (int attempt = 0; attempt < 3; ++attempt) {
        auto const v = current();
        std::string changed;
        try {
            co_return co_await read_from(*v, coord);
        } catch (archive_changed const& e) {
            changed = e.what();
        } catch (upstream_failure const& e) {
            co_return failed(tiles::tile_errc::upstream, e.what());
        } catch (remote::request_error const& e) {
            co_return failed(tiles::tile_errc::upstream, e.what());
        } catch (std::exception const& e) {
            co_return failed(tiles::tile_errc::internal, e.what());
        }
        try {
            co_await switch_from(v);
        } catch (std::exception const& e) {
            co_return failed(tiles::tile_errc::upstream,
                             fmt::format("{}, and its new version cannot be read: {}", changed, e.what()));
        }
    }
    co_return failed(tiles::tile_errc::upstream, "the archive changed three times during one request");
}

asio::awaitable<tiles::tile_result> pmtiles_source::async_get_tile(tile_coord coord,
                                                                   std::string const& /*query*/) const {
    // Tiles whose directories and bytes are in memory are read here, on the caller's event loop:
    // no trip to the pool. The others (a page not in the page cache, a leaf directory to read, a
    // remote archive) are read on the pool.
    if (auto now = read_at_hand(coord)) {
        co_return std::move(*now);
    }
    co_return co_await asio::co_spawn(m_blocking, read(coord), tiles::uncancellable());
}

} // namespace kachel::pmtiles
