# Warning flags for every kachel target, as an interface library (no directory-wide flags).
add_library(kachel_warnings INTERFACE)
target_compile_options(kachel_warnings INTERFACE
  -Wall -Wextra -pedantic -Wconversion -Wsign-compare -Wshadow -Wnon-virtual-dtor)
if(WERROR)
  target_compile_options(kachel_warnings INTERFACE -Werror)
endif()
