// apogee-protocompat: checks that our .proto files are wire-compatible with a
// reference set (the official RocketMQ protos).
//
// Both inputs are FileDescriptorSets from
//   protoc --include_imports --descriptor_set_out=FILE ...
// Every service, method, message (nested ones too), field, oneof, enum and
// enum value of --package in the reference must exist identically in the
// candidate. Elements only in the candidate are reported as "extra" and
// allowed, so we can carry upstream additions newer than the reference.
//
// Exit status: 0 compatible, 1 differences found, 2 usage or input error.

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/descriptor_database.h"

namespace apogee {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::FileDescriptorSet;
using google::protobuf::MethodDescriptor;
using google::protobuf::OneofDescriptor;
using google::protobuf::ServiceDescriptor;
using google::protobuf::SimpleDescriptorDatabase;

constexpr int kExitCompatible = 0;
constexpr int kExitDifferent = 1;
constexpr int kExitUsage = 2;

// Collects protoc-style build errors so a broken input names its problem.
class ErrorCollector : public DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name,
                const google::protobuf::Message* /*descriptor*/, ErrorLocation /*location*/,
                const std::string& message) override {
    errors_ << "  " << filename << ": " << element_name << ": " << message << "\n";
  }
  std::string errors() const { return errors_.str(); }

 private:
  std::ostringstream errors_;
};

// One FileDescriptorSet loaded into its own pool. The database must outlive
// the pool, which reads from it lazily.
struct LoadedSet {
  SimpleDescriptorDatabase database;
  ErrorCollector errors;
  std::unique_ptr<DescriptorPool> pool;
  std::vector<const FileDescriptor*> files;  // Every file of the set, built.
};

// Loads `path` or explains why not (in *error).
std::unique_ptr<LoadedSet> LoadDescriptorSet(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path;
    return nullptr;
  }
  FileDescriptorSet set;
  if (!set.ParseFromIstream(&in)) {
    *error = path + " is not a serialized FileDescriptorSet";
    return nullptr;
  }
  auto loaded = std::make_unique<LoadedSet>();
  for (const auto& file : set.file()) {
    if (!loaded->database.Add(file)) {
      *error = path + ": duplicate or invalid file " + file.name();
      return nullptr;
    }
  }
  // A database-backed pool resolves imports in any order, so the set need not
  // be topologically sorted.
  loaded->pool = std::make_unique<DescriptorPool>(&loaded->database, &loaded->errors);
  for (const auto& file : set.file()) {
    const FileDescriptor* built = loaded->pool->FindFileByName(file.name());
    if (built == nullptr) {
      *error = path + ": cannot build " + file.name() + " (was it made with --include_imports?)\n" +
               loaded->errors.errors();
      return nullptr;
    }
    loaded->files.push_back(built);
  }
  return loaded;
}

std::string LabelName(const FieldDescriptor* field) {
  switch (field->label()) {
    case FieldDescriptor::LABEL_OPTIONAL:
      return "optional";
    case FieldDescriptor::LABEL_REQUIRED:
      return "required";
    case FieldDescriptor::LABEL_REPEATED:
      return "repeated";
  }
  return "?";
}

// The referenced message or enum type, or "" for scalars.
std::string TypeName(const FieldDescriptor* field) {
  if (field->message_type() != nullptr) return field->message_type()->full_name();
  if (field->enum_type() != nullptr) return field->enum_type()->full_name();
  return "";
}

// Oneof membership, including proto3 `optional`'s synthetic oneof.
std::string OneofName(const FieldDescriptor* field) {
  const OneofDescriptor* oneof = field->containing_oneof();
  return oneof == nullptr ? "(none)" : oneof->name();
}

std::string Bool(bool value) { return value ? "true" : "false"; }

// Walks the reference package and checks each element against the candidate,
// then walks the candidate to find extras.
class Comparator {
 public:
  Comparator(const LoadedSet& reference, const LoadedSet& candidate, std::string package)
      : reference_(reference), candidate_(candidate), package_(std::move(package)) {}

  // Returns false if the reference has nothing in the package: comparing
  // against an empty reference would pass vacuously.
  bool Run() {
    bool found_package = false;
    for (const FileDescriptor* file : reference_.files) {
      if (file->package() != package_) continue;
      found_package = true;
      for (int i = 0; i < file->service_count(); ++i) CompareService(file->service(i));
      for (int i = 0; i < file->message_type_count(); ++i) {
        CompareMessage(file->message_type(i));
      }
      for (int i = 0; i < file->enum_type_count(); ++i) CompareEnum(file->enum_type(i));
    }
    for (const FileDescriptor* file : candidate_.files) {
      if (file->package() != package_) continue;
      for (int i = 0; i < file->service_count(); ++i) FindExtras(file->service(i));
      for (int i = 0; i < file->message_type_count(); ++i) FindExtras(file->message_type(i));
      for (int i = 0; i < file->enum_type_count(); ++i) FindExtras(file->enum_type(i));
    }
    return found_package;
  }

  int compared() const { return compared_; }
  int differences() const { return differences_; }
  int extras() const { return extras_; }

 private:
  void Missing(const std::string& kind, const std::string& name) {
    ++differences_;
    std::cout << "MISSING " << kind << " " << name << "\n";
  }

  // Reports a mismatching attribute; returns whether they matched.
  bool Expect(const std::string& kind, const std::string& name, const std::string& attribute,
              const std::string& theirs, const std::string& ours) {
    if (theirs == ours) return true;
    ++differences_;
    std::cout << "DIFFERENT " << kind << " " << name << ": " << attribute << " is " << ours
              << ", reference has " << theirs << "\n";
    return false;
  }

  void Extra(const std::string& kind, const std::string& name) {
    ++extras_;
    std::cout << "extra " << kind << " " << name << " (only in candidate; allowed)\n";
  }

  void CompareService(const ServiceDescriptor* theirs) {
    ++compared_;
    const ServiceDescriptor* ours = candidate_.pool->FindServiceByName(theirs->full_name());
    if (ours == nullptr) {
      Missing("service", theirs->full_name());
      return;
    }
    for (int i = 0; i < theirs->method_count(); ++i) {
      const MethodDescriptor* their_method = theirs->method(i);
      ++compared_;
      const MethodDescriptor* our_method = ours->FindMethodByName(their_method->name());
      const std::string& name = their_method->full_name();
      if (our_method == nullptr) {
        Missing("method", name);
        continue;
      }
      Expect("method", name, "input type", their_method->input_type()->full_name(),
             our_method->input_type()->full_name());
      Expect("method", name, "output type", their_method->output_type()->full_name(),
             our_method->output_type()->full_name());
      Expect("method", name, "client_streaming", Bool(their_method->client_streaming()),
             Bool(our_method->client_streaming()));
      Expect("method", name, "server_streaming", Bool(their_method->server_streaming()),
             Bool(our_method->server_streaming()));
    }
  }

  void CompareMessage(const Descriptor* theirs) {
    ++compared_;
    const Descriptor* ours = candidate_.pool->FindMessageTypeByName(theirs->full_name());
    if (ours == nullptr) {
      Missing("message", theirs->full_name());
      return;
    }
    // Map entries are generated messages; a map<> vs repeated-entry mismatch
    // would otherwise only show up indirectly.
    Expect("message", theirs->full_name(), "map_entry", Bool(theirs->options().map_entry()),
           Bool(ours->options().map_entry()));
    for (int i = 0; i < theirs->field_count(); ++i) CompareField(theirs->field(i), ours);
    for (int i = 0; i < theirs->oneof_decl_count(); ++i) {
      const OneofDescriptor* oneof = theirs->oneof_decl(i);
      ++compared_;
      if (ours->FindOneofByName(oneof->name()) == nullptr) {
        Missing("oneof", oneof->full_name());
      }
    }
    for (int i = 0; i < theirs->nested_type_count(); ++i) CompareMessage(theirs->nested_type(i));
    for (int i = 0; i < theirs->enum_type_count(); ++i) CompareEnum(theirs->enum_type(i));
  }

  void CompareField(const FieldDescriptor* theirs, const Descriptor* our_message) {
    ++compared_;
    const std::string& name = theirs->full_name();
    const FieldDescriptor* ours = our_message->FindFieldByName(theirs->name());
    if (ours == nullptr) {
      Missing("field", name);
      // Name the field squatting on the number, the likely cause.
      const FieldDescriptor* same_number = our_message->FindFieldByNumber(theirs->number());
      if (same_number != nullptr) {
        std::cout << "  note: number " << theirs->number() << " is used by "
                  << same_number->full_name() << " in the candidate\n";
      }
      return;
    }
    Expect("field", name, "number", std::to_string(theirs->number()),
           std::to_string(ours->number()));
    Expect("field", name, "type", theirs->type_name(), ours->type_name());
    Expect("field", name, "type_name", TypeName(theirs), TypeName(ours));
    Expect("field", name, "label", LabelName(theirs), LabelName(ours));
    Expect("field", name, "proto3_optional", Bool(theirs->has_optional_keyword()),
           Bool(ours->has_optional_keyword()));
    Expect("field", name, "oneof", OneofName(theirs), OneofName(ours));
    Expect("field", name, "packed", Bool(theirs->is_packed()), Bool(ours->is_packed()));
  }

  void CompareEnum(const EnumDescriptor* theirs) {
    ++compared_;
    const EnumDescriptor* ours = candidate_.pool->FindEnumTypeByName(theirs->full_name());
    if (ours == nullptr) {
      Missing("enum", theirs->full_name());
      return;
    }
    for (int i = 0; i < theirs->value_count(); ++i) {
      const EnumValueDescriptor* their_value = theirs->value(i);
      ++compared_;
      // Enum values are scoped to the enum here, not the package, so that a
      // value moved to another enum counts as missing.
      const EnumValueDescriptor* our_value = ours->FindValueByName(their_value->name());
      const std::string name = theirs->full_name() + "." + their_value->name();
      if (our_value == nullptr) {
        Missing("enum value", name);
        continue;
      }
      Expect("enum value", name, "number", std::to_string(their_value->number()),
             std::to_string(our_value->number()));
    }
  }

  void FindExtras(const ServiceDescriptor* ours) {
    const ServiceDescriptor* theirs = reference_.pool->FindServiceByName(ours->full_name());
    if (theirs == nullptr) {
      Extra("service", ours->full_name());
      return;
    }
    for (int i = 0; i < ours->method_count(); ++i) {
      if (theirs->FindMethodByName(ours->method(i)->name()) == nullptr) {
        Extra("method", ours->method(i)->full_name());
      }
    }
  }

  void FindExtras(const Descriptor* ours) {
    const Descriptor* theirs = reference_.pool->FindMessageTypeByName(ours->full_name());
    if (theirs == nullptr) {
      Extra("message", ours->full_name());
      return;
    }
    for (int i = 0; i < ours->field_count(); ++i) {
      const FieldDescriptor* field = ours->field(i);
      if (theirs->FindFieldByName(field->name()) != nullptr) continue;
      // An added field is only harmless if its number is free in the reference.
      const FieldDescriptor* clash = theirs->FindFieldByNumber(field->number());
      if (clash != nullptr) {
        ++differences_;
        std::cout << "DIFFERENT field " << field->full_name() << ": number " << field->number()
                  << " is " << clash->full_name() << " in the reference\n";
      } else {
        Extra("field", field->full_name());
      }
    }
    for (int i = 0; i < ours->oneof_decl_count(); ++i) {
      if (theirs->FindOneofByName(ours->oneof_decl(i)->name()) == nullptr) {
        Extra("oneof", ours->oneof_decl(i)->full_name());
      }
    }
    for (int i = 0; i < ours->nested_type_count(); ++i) FindExtras(ours->nested_type(i));
    for (int i = 0; i < ours->enum_type_count(); ++i) FindExtras(ours->enum_type(i));
  }

  void FindExtras(const EnumDescriptor* ours) {
    const EnumDescriptor* theirs = reference_.pool->FindEnumTypeByName(ours->full_name());
    if (theirs == nullptr) {
      Extra("enum", ours->full_name());
      return;
    }
    for (int i = 0; i < ours->value_count(); ++i) {
      const EnumValueDescriptor* value = ours->value(i);
      if (theirs->FindValueByName(value->name()) != nullptr) continue;
      Extra("enum value", ours->full_name() + "." + value->name());
    }
  }

  const LoadedSet& reference_;
  const LoadedSet& candidate_;
  const std::string package_;
  int compared_ = 0;
  int differences_ = 0;
  int extras_ = 0;
};

constexpr char kUsage[] =
    "usage: apogee-protocompat --reference=THEIRS.pb --candidate=OURS.pb "
    "--package=apache.rocketmq.v2\n"
    "  Both files come from: protoc --include_imports --descriptor_set_out=FILE ...\n"
    "  Exit 0 if every reference element of the package exists identically in the\n"
    "  candidate (extras allowed), 1 on differences, 2 on usage or input errors.\n";

// Parses --name=value flags; returns false on anything unexpected.
bool ParseFlags(int argc, char** argv, std::string* reference, std::string* candidate,
                std::string* package) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    if (eq == std::string::npos || eq + 1 == arg.size()) return false;
    const std::string value = arg.substr(eq + 1);
    if (name == "--reference") {
      *reference = value;
    } else if (name == "--candidate") {
      *candidate = value;
    } else if (name == "--package") {
      *package = value;
    } else {
      return false;
    }
  }
  return !reference->empty() && !candidate->empty() && !package->empty();
}

int Main(int argc, char** argv) {
  std::string reference_path;
  std::string candidate_path;
  std::string package;
  if (!ParseFlags(argc, argv, &reference_path, &candidate_path, &package)) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  std::string error;
  std::unique_ptr<LoadedSet> reference = LoadDescriptorSet(reference_path, &error);
  if (reference == nullptr) {
    std::cerr << "protocompat: reference: " << error << "\n";
    return kExitUsage;
  }
  std::unique_ptr<LoadedSet> candidate = LoadDescriptorSet(candidate_path, &error);
  if (candidate == nullptr) {
    std::cerr << "protocompat: candidate: " << error << "\n";
    return kExitUsage;
  }

  Comparator comparator(*reference, *candidate, package);
  if (!comparator.Run()) {
    std::cerr << "protocompat: reference " << reference_path << " has no files in package "
              << package << "\n";
    return kExitUsage;
  }
  std::cout << "protocompat: " << comparator.compared() << " elements compared, "
            << comparator.differences() << " differences, " << comparator.extras() << " extra\n";
  return comparator.differences() == 0 ? kExitCompatible : kExitDifferent;
}

}  // namespace
}  // namespace apogee

int main(int argc, char** argv) { return apogee::Main(argc, argv); }
