// Mapped archive files (core/mapped_file): the bytes as in the file, residency as the page
// cache has it, and which files count as ones nothing can write.

#include "core/mapped_file.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace kachel;
namespace fs = std::filesystem;

namespace {

fs::path scratch_file(std::string const& name, std::string const& bytes) {
    auto const path = fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
    fs::remove(path);
    std::ofstream{path, std::ios::binary} << bytes;
    return path;
}

} // namespace

TEST(mapped_file, serves_the_file_bytes_and_knows_they_are_in_memory) {
    std::string bytes(3 * 4096 + 123, 'x');
    bytes[5000] = 'y';
    auto const path = scratch_file("mapped", bytes);
    int const fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); // NOLINT: POSIX
    ASSERT_GE(fd, 0);
    auto const map = mapped_file::map(fd, bytes.size());
    ::close(fd); // the mapping stays
    ASSERT_TRUE(map);
    EXPECT_EQ(map->size(), bytes.size());
    EXPECT_EQ(map->bytes(4999, 3), "xyx");
    EXPECT_EQ(map->bytes(0, bytes.size()), bytes);
    EXPECT_TRUE(map->resident(4000, 9000)) << "just written: in the page cache";
    EXPECT_TRUE(map->resident(0, 0));
    EXPECT_FALSE(mapped_file::map(-1, 10)) << "no file, no mapping";
    fs::remove(path);
}

TEST(mapped_file, a_file_without_write_permission_is_one_nothing_can_write) {
    auto const path = scratch_file("unwritable", "bytes");
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    EXPECT_FALSE(nothing_can_write(path.string()));
    fs::permissions(path, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    EXPECT_TRUE(nothing_can_write(path.string()));
    EXPECT_FALSE(nothing_can_write((path.string() + ".missing"))) << "no such file";
    fs::remove(path);
}
