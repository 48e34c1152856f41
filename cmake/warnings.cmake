# Warning flags for every kachel target, as an interface library (no directory-wide flags).
add_library(kachel_warnings INTERFACE)
target_compile_options(kachel_warnings INTERFACE
  -Wall -Wextra -pedantic -Wconversion -Wsign-compare -Wshadow -Wnon-virtual-dtor)
if(WERROR)
  target_compile_options(kachel_warnings INTERFACE -Werror)
endif()
# GCC 12 reports false -Wrestrict positives inside libstdc++'s std::string operator+ at -O2/-O3
# (GCC bug 105651); the warning is off for that compiler only.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(kachel_warnings INTERFACE -Wno-restrict)
endif()
