# Lint targets, present only when the tool is installed.
find_program(CLANG_TIDY_PROGRAM clang-tidy)
if(CLANG_TIDY_PROGRAM)
  add_custom_target(clang-tidy
    COMMAND ${CLANG_TIDY_PROGRAM} -p ${CMAKE_BINARY_DIR} --quiet
            ${CMAKE_SOURCE_DIR}/src/*/*.cpp ${CMAKE_SOURCE_DIR}/src/main.cpp
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    COMMENT "clang-tidy over src/")
endif()
find_program(CPPCHECK_PROGRAM cppcheck)
if(CPPCHECK_PROGRAM)
  add_custom_target(cppcheck
    COMMAND ${CPPCHECK_PROGRAM} --project=${CMAKE_BINARY_DIR}/compile_commands.json --quiet
            --enable=warning,performance,portability --inline-suppr --error-exitcode=1
            -i${CMAKE_SOURCE_DIR}/tests
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    COMMENT "cppcheck over the compile database")
endif()
