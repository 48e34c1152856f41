# Lint targets, present only when the tool is installed.
find_program(CLANG_TIDY_PROGRAM clang-tidy)
if(CLANG_TIDY_PROGRAM)
  # The same run as the clang_tidy test: unity batches of src/, tools/ and bench/.
  add_custom_target(clang-tidy
    COMMAND ${CMAKE_COMMAND} -E env CLANG_TIDY=${CLANG_TIDY_PROGRAM}
            ${CMAKE_SOURCE_DIR}/tests/lint/clang_tidy.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}/clang-tidy
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    USES_TERMINAL
    COMMENT "clang-tidy over src/, tools/ and bench/")
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
