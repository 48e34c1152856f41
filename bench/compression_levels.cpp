// compression_levels: how much each encoder and level shrinks a set of tiles, and at what cost.
//   compression_levels TILE_FILE...
// Compresses every file with zlib (kachel's encoder before libdeflate, at its default level),
// libdeflate's gzip, zstd and brotli at several levels, each file as many times as fits in
// about 0.3 s, and prints per encoder: the output as a share of the input and the input
// megabytes per second of one core. bench/run uses it on the tiles of its request list; the
// levels kachel uses were chosen from its output (docs/operations.md).

#include <brotli/encode.h>
#include <fmt/format.h>
#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace {

using encoder = std::function<std::size_t(std::string const&, std::string&)>;

std::size_t zlib_gzip(std::string const& in, std::string& out) {
    z_stream zs{};
    deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    out.resize(deflateBound(&zs, static_cast<uLong>(in.size())));
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, Z_FINISH);
    auto const n = zs.total_out;
    deflateEnd(&zs);
    return n;
}

struct deflate_deleter {
    void operator()(libdeflate_compressor* c) const noexcept { libdeflate_free_compressor(c); }
};
struct zstd_deleter {
    void operator()(ZSTD_CCtx* c) const noexcept { ZSTD_freeCCtx(c); }
};

encoder libdeflate_gzip(int level) {
    auto c = std::shared_ptr<libdeflate_compressor>(libdeflate_alloc_compressor(level), deflate_deleter{});
    return [c](std::string const& in, std::string& out) {
        out.resize(libdeflate_gzip_compress_bound(c.get(), in.size()));
        return libdeflate_gzip_compress(c.get(), in.data(), in.size(), out.data(), out.size());
    };
}

encoder zstd(int level) {
    auto c = std::shared_ptr<ZSTD_CCtx>(ZSTD_createCCtx(), zstd_deleter{});
    return [c, level](std::string const& in, std::string& out) {
        out.resize(ZSTD_compressBound(in.size()));
        return ZSTD_compressCCtx(c.get(), out.data(), out.size(), in.data(), in.size(), level);
    };
}

encoder brotli(int quality) {
    return [quality](std::string const& in, std::string& out) {
        std::size_t size = BrotliEncoderMaxCompressedSize(in.size()) + 1024;
        out.resize(size);
        BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, in.size(),
                              reinterpret_cast<uint8_t const*>(in.data()), &size,
                              reinterpret_cast<uint8_t*>(out.data()));
        return size;
    };
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> tiles;
    std::size_t total = 0;
    for (int i = 1; i < argc; ++i) {
        std::ifstream in{argv[i], std::ios::binary};
        std::string data{std::istreambuf_iterator<char>{in}, {}};
        if (!data.empty()) {
            total += data.size();
            tiles.push_back(std::move(data));
        }
    }
    if (tiles.empty()) {
        fmt::print(stderr, "usage: compression_levels TILE_FILE...\n");
        return 2;
    }
    std::vector<std::pair<std::string, encoder>> encoders{{"zlib gzip 6 (before)", zlib_gzip}};
    for (int level : {1, 2, 3, 4, 6, 9}) {
        encoders.emplace_back(fmt::format("libdeflate gzip {}", level), libdeflate_gzip(level));
    }
    for (int level : {1, 2, 3, 6}) {
        encoders.emplace_back(fmt::format("zstd {}", level), zstd(level));
    }
    for (int quality : {1, 2, 3, 4, 5, 6}) {
        encoders.emplace_back(fmt::format("brotli {}", quality), brotli(quality));
    }
    fmt::print("{} tiles, {:.1f} MB\n{:<24} {:>10} {:>12}\n", tiles.size(), static_cast<double>(total) / 1e6,
               "encoder", "size %", "MB/s (1 core)");
    std::string out;
    for (auto const& [name, encode] : encoders) {
        std::size_t compressed = 0;
        std::size_t passes = 0;
        auto const start = std::chrono::steady_clock::now();
        auto elapsed = std::chrono::duration<double>{0};
        do {
            compressed = 0;
            for (auto const& tile : tiles) {
                compressed += encode(tile, out);
            }
            ++passes;
            elapsed = std::chrono::steady_clock::now() - start;
        } while (elapsed.count() < 0.3);
        fmt::print("{:<24} {:>10.1f} {:>12.1f}\n", name,
                   100.0 * static_cast<double>(compressed) / static_cast<double>(total),
                   static_cast<double>(total * passes) / 1e6 / elapsed.count());
    }
    return 0;
}
