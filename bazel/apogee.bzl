"""Macros shared by every BUILD file. Each one mirrors the CMake helper of the same
name in cmake/apogee.cmake, so both builds describe a target the same way:

  CMake                                      Bazel
  apogee_proto_library(NAME n SRCS ... GRPC) apogee_proto_library(name, srcs, deps, grpc)
  apogee_library(NAME n SRCS ... DEPS ...)   apogee_library(name, srcs, hdrs, deps)
  apogee_binary(NAME n SRCS ... DEPS ...)    apogee_binary(name, srcs, deps)
    [ALLOCATOR]                                [allocator = True]
  apogee_test(NAME n SRCS ... LABELS l)      apogee_test(name, srcs, deps, labels)
  apogee_cluster_test(NAME n SRCS ... DEPS)  apogee_cluster_test(name, srcs, deps)
    (tests/integration/CMakeLists.txt)

Includes are relative to the repository root ("services/common/..."); generated
proto headers relative to protos/ ("apache/rocketmq/v2/definition.pb.h").
"""

# CMake: apogee_warnings(). Not applied to generated protos.
APOGEE_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
] + select({
    "//bazel:werror": ["-Werror"],  # --config=werror (CMake: APOGEE_WERROR)
    "//conditions:default": [],
})

_PROTOC = "/usr/bin/protoc"
_GRPC_CPP_PLUGIN = "/usr/bin/grpc_cpp_plugin"

def apogee_proto_library(name, srcs, deps = [], grpc = False, visibility = None):
    """C++ (and with grpc = True, gRPC) code for protos, as a cc_library.

    srcs are paths relative to this package, which is the proto root (-I), so it
    must be used from protos/BUILD: imports and generated includes then read
    "apache/rocketmq/v2/definition.proto" / "apache/rocketmq/v2/definition.pb.h"
    exactly as in CMake. deps are other apogee_proto_library targets. Also
    defines <name>_protos, the .proto files of this library and its deps.
    """
    outs = []
    for src in srcs:
        if not src.endswith(".proto"):
            fail("apogee_proto_library %s: %s is not a .proto file" % (name, src))
        stem = src[:-len(".proto")]
        outs += [stem + ".pb.cc", stem + ".pb.h"]
        if grpc:
            outs += [stem + ".grpc.pb.cc", stem + ".grpc.pb.h"]

    native.filegroup(
        name = name + "_protos",
        srcs = srcs + [dep + "_protos" for dep in deps],
        visibility = visibility,
    )

    proto_root = native.package_name() or "."
    grpc_args = ""
    if grpc:
        grpc_args = "--grpc_out=$(RULEDIR) --plugin=protoc-gen-grpc=%s " % _GRPC_CPP_PLUGIN
    native.genrule(
        name = name + "_gen",
        srcs = [":" + name + "_protos"],
        outs = outs,
        cmd = "%s -I%s --cpp_out=$(RULEDIR) %s%s" % (
            _PROTOC,
            proto_root,
            grpc_args,
            " ".join(["%s/%s" % (proto_root, src) for src in srcs]),
        ),
        message = "protoc " + name,
        visibility = ["//visibility:private"],
    )

    native.cc_library(
        name = name,
        srcs = [out for out in outs if out.endswith(".cc")],
        hdrs = [out for out in outs if out.endswith(".h")],
        includes = ["."],  # the generated tree for this package = proto root
        linkstatic = True,
        deps = deps + ["@protobuf"] + (["@grpc//:grpc++"] if grpc else []),
        visibility = visibility,
    )

def apogee_library(name, srcs = [], hdrs = [], deps = [], visibility = None, **kwargs):
    """One of our libraries. hdrs: headers other targets include."""
    native.cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        copts = APOGEE_COPTS,
        deps = deps,
        linkstatic = True,  # CMake: STATIC (no lib<name>.so)
        visibility = visibility,
        **kwargs
    )

def apogee_binary(name, srcs, deps = [], visibility = None, allocator = False, **kwargs):
    """allocator = True links the server allocator (CMake: ALLOCATOR, APOGEE_MALLOC)."""
    native.cc_binary(
        name = name,
        srcs = srcs,
        copts = APOGEE_COPTS,
        deps = deps + (select({
            "//bazel:system_malloc": [],
            "//conditions:default": ["//services/common:apogee_allocator", "@jemalloc"],
        }) if allocator else []),
        visibility = visibility,
        **kwargs
    )

def _runfiles_path(label):
    """Runfiles-relative path of a main-repository executable target: the path
    the test sees from its working directory, like $(rootpath) (which Bazel 4
    does not expand in local_defines)."""
    if label.startswith("@"):
        fail("integration_binaries: %s: only targets of this repository are supported" % label)
    if label.startswith("//"):
        package, _, name = label[2:].partition(":")
        if not name:
            name = package.rpartition("/")[2]
    else:
        package, name = native.package_name(), label.lstrip(":")
    return package + "/" + name if package else name

def apogee_test(
        name,
        srcs,
        deps = [],
        labels = ["unit"],
        integration_binaries = {},
        data = [],
        local_defines = [],
        tags = [],
        **kwargs):
    """A gtest/gmock test (gtest_main linked), like CMake's apogee_test.

    labels: "unit" (default) or "integration", the CMake test LABELS; they become
    tags, so `bazel test --test_tag_filters=unit //...` matches `ctest -L unit`.

    integration_binaries: {DEFINE: label} for tests that start our binaries. The
    binary becomes a data dependency and DEFINE its runfiles-relative path, which
    is valid from the test's working directory (CMake defines the same macro as
    the absolute $<TARGET_FILE:...>). Example:

        apogee_test(
            name = "nameserver_integration_test",
            srcs = ["nameserver_integration_test.cc"],
            labels = ["integration"],
            integration_binaries = {
                "APOGEE_NAMESERVER_BIN": "//services/nameserver:apogee-nameserver",
            },
            deps = ["//services/common:apogee_testing"],
        )

    gives data = ["//services/nameserver:apogee-nameserver"] and
    local_defines = ["APOGEE_NAMESERVER_BIN=\\"services/nameserver/apogee-nameserver\\""],
    so the test can Spawn(APOGEE_NAMESERVER_BIN, ...).

    Tests that need the network or write outside $TEST_TMPDIR (npm) also need
    tags = ["no-sandbox", "requires-network"].
    """
    binary_defines = []
    for define, binary in integration_binaries.items():
        binary_defines.append('%s=\\"%s\\"' % (define, _runfiles_path(binary)))
    timeout = kwargs.pop("timeout", "long")  # CMake: TIMEOUT 600
    native.cc_test(
        name = name,
        srcs = srcs,
        copts = APOGEE_COPTS,
        deps = deps + [
            "@gtest",
            "@gtest//:gmock",
            "@gtest//:gtest_main",
        ],
        data = data + integration_binaries.values(),
        local_defines = local_defines + binary_defines,
        tags = tags + labels,
        linkstatic = True,  # static, like CMake
        timeout = timeout,
        **kwargs
    )

def apogee_cluster_test(name, srcs, deps = [], integration_binaries = {}, **kwargs):
    """An integration test that starts a LocalCluster (NameServer + store +
    broker), like tests/integration's CMake apogee_cluster_test(): it gets the
    three server binaries (plus `integration_binaries`) and the cluster
    library (LocalCluster, V2TestClient)."""
    binaries = {
        "APOGEE_NAMESERVER_BIN": "//services/nameserver:apogee-nameserver",
        "APOGEE_STORE_BIN": "//services/store:apogee-store",
        "APOGEE_BROKER_BIN": "//services/broker:apogee-broker",
    }
    binaries.update(integration_binaries)
    apogee_test(
        name = name,
        srcs = srcs,
        labels = ["integration"],
        integration_binaries = binaries,
        deps = deps + [
            "//services/common:apogee_testing",
            "//tests/integration:apogee_local_cluster",
        ],
        **kwargs
    )
