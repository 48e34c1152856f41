#include "tiles/content_encoding.hpp"

#include "core/c_handle.hpp"

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <stdexcept>

namespace kachel::tiles {

namespace {

/// Ends an inflating z_stream when it leaves scope (zlib only decompresses here).
struct z_stream_guard {
    explicit z_stream_guard(z_stream& s) noexcept : stream(s) {}
    z_stream& stream;
    z_stream_guard(z_stream_guard const&) = delete;
    z_stream_guard& operator=(z_stream_guard const&) = delete;
    ~z_stream_guard() { inflateEnd(&stream); }
};

constexpr std::size_t max_decoded_size = std::size_t{256} << 20;
/// Brotli's quality by input size (docs/operations.md): 6, as Martin, makes typical tiles 12 %
/// smaller than quality 2 but compresses 17 to 37 MB/s, 0.4 s for a 6.6 MB tile; quality 2
/// compresses 115 to 133 MB/s, and for such a big tile it makes about what quality 6 makes.
constexpr std::size_t brotli_small_input = std::size_t{256} << 10;
constexpr int brotli_quality_small = 6;
constexpr int brotli_quality_big = 2;
/// Levels chosen by measured size against time on MVT tiles (docs/operations.md): libdeflate's
/// level 1 makes 45 % of the input at 143 MB/s where zlib's default made 43 % at 17 MB/s; zstd's
/// level 3 makes 46 % at 131 MB/s.
constexpr int gzip_level = 1;
constexpr int zstd_level = 3;

/// Outputs up to this size are compressed into the thread's scratch buffer; a larger one (a
/// tile of megabytes) gets a buffer of its own, so no thread keeps megabytes for good.
constexpr std::size_t scratch_limit = std::size_t{1} << 20;

/// What one thread keeps between responses, so compressing allocates only the result: the
/// compressor states and a scratch buffer of up to scratch_limit bytes.
struct compressor_state {
    c_handle<libdeflate_compressor, libdeflate_free_compressor> gzip;
    c_handle<ZSTD_CCtx, ZSTD_freeCCtx> zstd;
    std::string scratch;

    /// Runs `encode(out, capacity) -> size` into a buffer of `bound` bytes and returns the
    /// output as a string of its exact size (so a cached tile holds no slack).
    template <class TEncode>
    std::string encode_into_buffer(std::size_t bound, TEncode encode) {
        std::string large;
        char* out = nullptr;
        if (bound <= scratch_limit) {
            if (scratch.size() < bound) {
                scratch.resize(bound);
            }
            out = scratch.data();
        } else {
            large.resize(bound);
            out = large.data();
        }
        std::size_t const size = encode(out, bound);
        return std::string{out, size};
    }
};

compressor_state& this_thread_compressors() {
    thread_local compressor_state state;
    return state;
}

} // namespace

std::string compress(std::string_view data, encoding e) {
    switch (e) {
    case encoding::identity:
        return std::string{data};
    case encoding::gzip: {
        auto& state = this_thread_compressors();
        if (!state.gzip) {
            state.gzip.reset(libdeflate_alloc_compressor(gzip_level));
            if (!state.gzip) {
                throw std::runtime_error{"gzip: out of memory for the compressor"};
            }
        }
        auto* compressor = state.gzip.get();
        return state.encode_into_buffer(
            libdeflate_gzip_compress_bound(compressor, data.size()), [&](char* out, std::size_t capacity) {
                auto const size =
                    libdeflate_gzip_compress(compressor, data.data(), data.size(), out, capacity);
                if (size == 0) {
                    throw std::runtime_error{"gzip: compression failed"};
                }
                return size;
            });
    }
    case encoding::brotli: {
        // (Brotli's one-shot call makes its state anew each time; Debian's 1.0.9 has no way to
        // reset an encoder instance for another input.)
        std::size_t const bound = BrotliEncoderMaxCompressedSize(data.size());
        return this_thread_compressors().encode_into_buffer(
            bound == 0 ? data.size() + 1024 : bound, [&](char* out, std::size_t capacity) {
                std::size_t size = capacity;
                int const quality =
                    data.size() <= brotli_small_input ? brotli_quality_small : brotli_quality_big;
                if (BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, data.size(),
                                          reinterpret_cast<uint8_t const*>(data.data()), &size,
                                          reinterpret_cast<uint8_t*>(out)) == BROTLI_FALSE) {
                    throw std::runtime_error{"brotli: compression failed"};
                }
                return size;
            });
    }
    case encoding::zstd: {
        auto& state = this_thread_compressors();
        if (!state.zstd) {
            state.zstd.reset(ZSTD_createCCtx());
            if (!state.zstd) {
                throw std::runtime_error{"zstd: out of memory for the compressor"};
            }
        }
        auto* context = state.zstd.get();
        return state.encode_into_buffer(ZSTD_compressBound(data.size()), [&](char* out,
                                                                             std::size_t capacity) {
            auto const size = ZSTD_compressCCtx(context, out, capacity, data.data(), data.size(), zstd_level);
            if (ZSTD_isError(size) != 0U) {
                throw std::runtime_error{std::string{"zstd: "} + ZSTD_getErrorName(size)};
            }
            return size;
        });
    }
    }
    return std::string{data};
}

std::string decompress(std::string_view data, encoding e) {
    std::string out;
    std::array<char, 65536> buffer{};
    auto append = [&](std::size_t n) {
        out.append(buffer.data(), n);
        if (out.size() > max_decoded_size) {
            throw std::runtime_error{"decompressed data too large"};
        }
    };
    switch (e) {
    case encoding::identity:
        return std::string{data};
    case encoding::gzip: {
        z_stream zs{};
        if (inflateInit2(&zs, 15 + 32) != Z_OK) {
            throw std::runtime_error{"gzip: inflateInit2 failed"};
        }
        z_stream_guard const guard{zs};
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
        zs.avail_in = static_cast<uInt>(data.size());
        int rc = Z_OK;
        while (rc != Z_STREAM_END) {
            zs.next_out = reinterpret_cast<Bytef*>(buffer.data());
            zs.avail_out = static_cast<uInt>(buffer.size());
            rc = inflate(&zs, Z_NO_FLUSH);
            if (rc != Z_OK && rc != Z_STREAM_END) {
                throw std::runtime_error{"gzip: invalid data"};
            }
            append(buffer.size() - zs.avail_out);
            if (rc == Z_STREAM_END && zs.avail_in > 0) {
                inflateReset(&zs); // concatenated members (composite tiles)
                rc = Z_OK;
            }
        }
        return out;
    }
    case encoding::brotli: {
        c_handle<BrotliDecoderState, BrotliDecoderDestroyInstance> state{
            BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)};
        auto const* next_in = reinterpret_cast<uint8_t const*>(data.data());
        std::size_t avail_in = data.size();
        for (;;) {
            auto* next_out = reinterpret_cast<uint8_t*>(buffer.data());
            std::size_t avail_out = buffer.size();
            auto const rc = BrotliDecoderDecompressStream(state.get(), &avail_in, &next_in, &avail_out,
                                                          &next_out, nullptr);
            append(buffer.size() - avail_out);
            if (rc == BROTLI_DECODER_RESULT_SUCCESS) {
                return out;
            }
            if (rc == BROTLI_DECODER_RESULT_ERROR ||
                (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT && avail_in == 0)) {
                throw std::runtime_error{"brotli: invalid data"};
            }
        }
    }
    case encoding::zstd: {
        c_handle<ZSTD_DCtx, ZSTD_freeDCtx> ctx{ZSTD_createDCtx()};
        ZSTD_inBuffer in{data.data(), data.size(), 0};
        while (in.pos < in.size) {
            ZSTD_outBuffer o{buffer.data(), buffer.size(), 0};
            auto const rc = ZSTD_decompressStream(ctx.get(), &o, &in);
            if (ZSTD_isError(rc) != 0U) {
                throw std::runtime_error{std::string{"zstd: "} + ZSTD_getErrorName(rc)};
            }
            append(o.pos);
        }
        return out;
    }
    }
    return out;
}

} // namespace kachel::tiles
