# Helpers shared by every CMakeLists.txt. Each helper mirrors one Bazel macro
# in bazel/apogee.bzl so both builds describe a target the same way.

# apogee_proto_library(NAME name SRCS a.proto... [DEPS proto_lib...] [GRPC])
# Generates C++ from protos (paths relative to protos/) into the build tree
# and builds them into a static library without our warning flags.
function(apogee_proto_library)
  cmake_parse_arguments(P "GRPC" "NAME" "SRCS;DEPS" ${ARGN})
  set(proto_root ${PROJECT_SOURCE_DIR}/protos)
  set(out_dir ${PROJECT_BINARY_DIR}/gen)
  set(generated)
  set(inputs)
  foreach(src ${P_SRCS})
    get_filename_component(dir ${src} DIRECTORY)
    get_filename_component(stem ${src} NAME_WE)
    list(APPEND inputs ${proto_root}/${src})
    list(APPEND generated ${out_dir}/${dir}/${stem}.pb.cc ${out_dir}/${dir}/${stem}.pb.h)
    if(P_GRPC)
      list(APPEND generated ${out_dir}/${dir}/${stem}.grpc.pb.cc ${out_dir}/${dir}/${stem}.grpc.pb.h)
    endif()
  endforeach()
  set(grpc_args)
  if(P_GRPC)
    set(grpc_args --grpc_out=${out_dir} --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>)
  endif()
  add_custom_command(
    OUTPUT ${generated}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND protobuf::protoc -I${proto_root} --cpp_out=${out_dir} ${grpc_args} ${P_SRCS}
    WORKING_DIRECTORY ${proto_root}
    DEPENDS ${inputs} protobuf::protoc
    COMMENT "protoc ${P_NAME}")
  add_library(${P_NAME} STATIC ${generated})
  # BUILD_INTERFACE: the SDK installs some of these libraries (install(EXPORT)).
  target_include_directories(${P_NAME} PUBLIC $<BUILD_INTERFACE:${out_dir}>)
  target_link_libraries(${P_NAME} PUBLIC protobuf::libprotobuf ${P_DEPS})
  if(P_GRPC)
    target_link_libraries(${P_NAME} PUBLIC gRPC::grpc++)
  endif()
endfunction()

# apogee_library(NAME name SRCS ... [DEPS ...]): one of our libraries.
function(apogee_library)
  cmake_parse_arguments(L "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(${L_NAME} STATIC ${L_SRCS})
  target_include_directories(${L_NAME} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>)
  target_link_libraries(${L_NAME} PUBLIC ${L_DEPS})
  apogee_warnings(${L_NAME})
endfunction()

# apogee_binary(NAME name SRCS ... [DEPS ...] [ALLOCATOR]): ALLOCATOR links the
# server allocator (APOGEE_MALLOC) into a long-running server or load tool.
function(apogee_binary)
  cmake_parse_arguments(B "ALLOCATOR" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${B_NAME} ${B_SRCS})
  target_include_directories(${B_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${B_NAME} PRIVATE ${B_DEPS})
  if(B_ALLOCATOR AND APOGEE_MALLOC_LIBS)  # APOGEE_MALLOC (top-level CMakeLists.txt)
    target_link_libraries(${B_NAME} PRIVATE apogee_allocator ${APOGEE_MALLOC_LIBS})
  endif()
  apogee_warnings(${B_NAME})
endfunction()

# Every unit test executable, so a build that runs only `ctest -L unit` (the
# sanitizer stage of scripts/test-all.sh) can skip the servers and the
# integration tests: `ninja apogee_unit_tests`.
add_custom_target(apogee_unit_tests)

# apogee_test(NAME name SRCS ... [DEPS ...] [LABELS unit|integration])
# Unit tests run in the sanitizer build too; integration tests start processes.
function(apogee_test)
  cmake_parse_arguments(T "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SRCS})
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  apogee_warnings(${T_NAME})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if("unit" IN_LIST T_LABELS)
    add_dependencies(apogee_unit_tests ${T_NAME})
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT 600)
endfunction()
