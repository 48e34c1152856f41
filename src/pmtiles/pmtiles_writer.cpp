#include "pmtiles/pmtiles_writer.hpp"

#include "core/error.hpp"
#include "tiles/content_encoding.hpp"
#include "tiles/tile_ranges.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

namespace kachel::pmtiles {

namespace {

constexpr std::size_t first_bytes = 16384; ///< header and root directory fit in these
constexpr std::size_t first_leaf_size = 4096;

void put_varint(std::string& out, std::uint64_t value) {
    while (value >= 0x80) {
        out.push_back(static_cast<char>((value & 0x7fU) | 0x80U));
        value >>= 7U;
    }
    out.push_back(static_cast<char>(value));
}

template <typename T>
void put_le(std::string& out, T value) {
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        out.push_back(static_cast<char>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xffU));
    }
}

/// Degrees as the header keeps them: 32-bit integers of 10^-7 degrees.
std::int32_t e7(double degrees) noexcept {
    return static_cast<std::int32_t>(std::lround(degrees * 1e7));
}

std::string system_message() {
    return std::strerror(errno);
}

/// Entries read in the order they were written to an index file.
std::vector<entry> read_entries(std::FILE* index, std::size_t count) {
    std::vector<entry> out(count);
    if (count > 0 && std::fread(out.data(), sizeof(entry), count, index) != count) {
        throw source_error{fmt_error("Cannot read back the directory entries: {}", system_message())};
    }
    return out;
}

/// Copies `length` bytes of `in` from its start to the end of `out`, by the kernel.
void copy_range(int in, int out, std::uint64_t length) {
    loff_t from = 0;
    while (static_cast<std::uint64_t>(from) < length) {
        auto const n =
            ::copy_file_range(in, &from, out, nullptr, length - static_cast<std::uint64_t>(from), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            throw source_error{fmt_error("Cannot copy into the archive: {}", system_message())};
        }
    }
}

std::string gz(std::string const& raw) {
    return tiles::compress(raw, tiles::encoding::gzip);
}

} // namespace

std::optional<std::uint8_t> tile_type_code(std::string_view mime) noexcept {
    for (std::uint8_t code = 1; code <= 6; ++code) {
        if (type_name(code) == mime) {
            return code;
        }
    }
    return std::nullopt;
}

std::uint8_t compression_code(tiles::encoding e) noexcept {
    switch (e) {
    case tiles::encoding::gzip:
        return 2;
    case tiles::encoding::brotli:
        return 3;
    case tiles::encoding::zstd:
        return 4;
    case tiles::encoding::identity:
        break;
    }
    return 1;
}

std::string serialize_directory(std::vector<entry> const& entries) {
    std::string out;
    out.reserve(entries.size() * 6 + 8);
    put_varint(out, entries.size());
    std::uint64_t last_id = 0;
    for (auto const& e : entries) {
        put_varint(out, e.tile_id - last_id);
        last_id = e.tile_id;
    }
    for (auto const& e : entries) {
        put_varint(out, e.run_length);
    }
    for (auto const& e : entries) {
        put_varint(out, e.length);
    }
    for (std::size_t i = 0; i < entries.size(); ++i) {
        auto const& e = entries[i];
        if (i > 0 && e.offset == entries[i - 1].offset + entries[i - 1].length) {
            put_varint(out, 0);
        } else {
            put_varint(out, e.offset + 1);
        }
    }
    return out;
}

pmtiles_writer::temp_file::temp_file(std::string name) : path(std::move(name)) {
    file.reset(std::fopen(path.c_str(), "w+b")); // NOLINT(cppcoreguidelines-owning-memory): owned by `file`
    if (!file) {
        throw source_error{
            fmt_error("Cannot write {}: {}; choose a directory you can write to", path, system_message())};
    }
}

pmtiles_writer::temp_file::~temp_file() {
    file.reset();
    std::error_code ec;
    std::filesystem::remove(path, ec);
}

pmtiles_writer::pmtiles_writer(std::string path)
    : m_path(std::move(path)), m_temp_path(fmt::format("{}.{}.tmp", m_path, ::getpid())),
      m_data(fmt::format("{}.{}.data.tmp", m_path, ::getpid())),
      m_index(fmt::format("{}.{}.index.tmp", m_path, ::getpid())) {}

pmtiles_writer::~pmtiles_writer() {
    if (!m_finished) {
        std::error_code ec;
        std::filesystem::remove(m_temp_path, ec);
    }
}

void pmtiles_writer::close_entry() {
    if (m_open && std::fwrite(&*m_open, sizeof(entry), 1, m_index.file.get()) != 1) {
        throw source_error{fmt_error("Cannot write {}: {}", m_index.path, system_message())};
    }
    m_open.reset();
}

void pmtiles_writer::add(std::uint64_t id, std::string_view bytes) {
    auto const h = XXH3_128bits(bytes.data(), bytes.size());
    hash128 const hash{h.low64, h.high64};
    ++m_addressed;
    auto const z = static_cast<std::uint8_t>(tiles::tile_of_id(id).z);
    m_min_zoom = std::min(m_min_zoom, z);
    m_max_zoom = std::max(m_max_zoom, z);
    if (m_open && hash == m_last_hash && m_open->tile_id + m_open->run_length == id &&
        m_open->run_length < std::numeric_limits<std::uint32_t>::max()) {
        ++m_open->run_length;
        return;
    }
    close_entry();
    ++m_entries;
    m_last_hash = hash;
    bool const kept = bytes.size() <= dedup_limit;
    if (kept) {
        if (auto const found = m_stored.find(hash); found != m_stored.end()) {
            m_open = entry{id, found->second.offset, found->second.length, 1};
            return;
        }
    }
    if (bytes.size() > std::numeric_limits<std::uint32_t>::max()) {
        throw source_error{fmt_error("tile {} of {} bytes is too large for PMTiles", id, bytes.size())};
    }
    if (std::fwrite(bytes.data(), 1, bytes.size(), m_data.file.get()) != bytes.size()) {
        throw source_error{fmt_error("Cannot write {}: {}", m_data.path, system_message())};
    }
    auto const length = static_cast<std::uint32_t>(bytes.size());
    if (kept) {
        m_stored.emplace(hash, stored{m_data_size, length});
    }
    m_open = entry{id, m_data_size, length, 1};
    m_data_size += length;
    ++m_contents;
}

pmtiles_writer::directories pmtiles_writer::write_directories(temp_file& leaves) {
    close_entry();
    auto* index = m_index.file.get();
    if (std::fflush(index) != 0) {
        throw source_error{fmt_error("Cannot write {}: {}", m_index.path, system_message())};
    }
    directories out;
    // Everything in the root, when it fits (tried only for a number of entries that could).
    constexpr std::uint64_t root_at_most = 100'000;
    if (m_entries <= root_at_most) {
        std::rewind(index);
        out.root = gz(serialize_directory(read_entries(index, static_cast<std::size_t>(m_entries))));
        if (header_size + out.root.size() <= first_bytes) {
            return out;
        }
    }
    // Leaves, read from the index a leaf at a time, growing until the root pointing at them fits.
    for (std::uint64_t leaf_size = first_leaf_size;; leaf_size += leaf_size / 2) {
        std::rewind(index);
        std::rewind(leaves.file.get());
        out.leaves_length = 0;
        std::vector<entry> root;
        for (std::uint64_t at = 0; at < m_entries; at += leaf_size) {
            auto const part =
                read_entries(index, static_cast<std::size_t>(std::min(leaf_size, m_entries - at)));
            auto const leaf = gz(serialize_directory(part));
            if (std::fwrite(leaf.data(), 1, leaf.size(), leaves.file.get()) != leaf.size()) {
                throw source_error{fmt_error("Cannot write {}: {}", leaves.path, system_message())};
            }
            root.push_back(
                entry{part.front().tile_id, out.leaves_length, static_cast<std::uint32_t>(leaf.size()), 0});
            out.leaves_length += leaf.size();
        }
        out.root = gz(serialize_directory(root));
        if (header_size + out.root.size() <= first_bytes) {
            if (std::fflush(leaves.file.get()) != 0) {
                throw source_error{fmt_error("Cannot write {}: {}", leaves.path, system_message())};
            }
            return out;
        }
    }
}

void pmtiles_writer::finish(archive_description const& d) {
    if (std::fflush(m_data.file.get()) != 0) {
        throw source_error{fmt_error("Cannot write {}: {}", m_data.path, system_message())};
    }
    temp_file leaves{fmt::format("{}.{}.leaves.tmp", m_path, ::getpid())};
    auto const dirs = write_directories(leaves);
    auto const metadata = tiles::compress(d.metadata.dump(), tiles::encoding::gzip);

    std::string head;
    head.reserve(header_size);
    head += "PMTiles";
    head.push_back(3);
    std::uint64_t const root_offset = header_size;
    std::uint64_t const metadata_offset = root_offset + dirs.root.size();
    std::uint64_t const leaf_offset = metadata_offset + metadata.size();
    std::uint64_t const data_offset = leaf_offset + dirs.leaves_length;
    for (std::uint64_t v :
         {root_offset, std::uint64_t{dirs.root.size()}, metadata_offset, std::uint64_t{metadata.size()},
          leaf_offset, dirs.leaves_length, data_offset, m_data_size, m_addressed, m_entries, m_contents}) {
        put_le(head, v);
    }
    bool const empty = m_entries == 0;
    head.push_back(1); // clustered: tile data in tile-id order
    head.push_back(2); // internal compression: gzip
    head.push_back(static_cast<char>(d.tile_compression));
    head.push_back(static_cast<char>(d.tile_type));
    head.push_back(static_cast<char>(empty ? 0 : m_min_zoom));
    head.push_back(static_cast<char>(empty ? 0 : m_max_zoom));
    put_le(head, e7(d.min_lon));
    put_le(head, e7(d.min_lat));
    put_le(head, e7(d.max_lon));
    put_le(head, e7(d.max_lat));
    head.push_back(static_cast<char>(d.center_zoom));
    put_le(head, e7(d.center_lon));
    put_le(head, e7(d.center_lat));

    int const out =
        ::open(m_temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644); // NOLINT: POSIX
    if (out < 0) {
        throw source_error{fmt_error("Cannot write {}: {}; choose a directory you can write to", m_temp_path,
                                     system_message())};
    }
    try {
        for (std::string const* part : std::array<std::string const*, 3>{&head, &dirs.root, &metadata}) {
            std::size_t done = 0;
            while (done < part->size()) {
                auto const n = ::write(out, part->data() + done, part->size() - done);
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                if (n <= 0) {
                    throw source_error{fmt_error("Cannot write {}: {}", m_temp_path, system_message())};
                }
                done += static_cast<std::size_t>(n);
            }
        }
        // The leaf directories and the tile data, from their files, by the kernel.
        copy_range(::fileno(leaves.file.get()), out, dirs.leaves_length);
        copy_range(::fileno(m_data.file.get()), out, m_data_size);
        if (::fsync(out) != 0) {
            throw source_error{fmt_error("Cannot write {}: {}", m_temp_path, system_message())};
        }
    } catch (...) {
        ::close(out);
        throw;
    }
    ::close(out);
    if (std::rename(m_temp_path.c_str(), m_path.c_str()) != 0) {
        throw source_error{fmt_error("Cannot rename {} to {}: {}", m_temp_path, m_path, system_message())};
    }
    m_finished = true;
}

} // namespace kachel::pmtiles
