# Layering probes (docs/design.md §2.2): a one-line source compiled with exactly the include
# directories of one folder's library. A forbidden include must fail with "No such file or
# directory"; an allowed one (the controls) must compile, so that a probe cannot pass for
# another reason. Each probe is a CTest test that builds its EXCLUDE_FROM_ALL target:
# `ctest -R layering`. The probes share the build directory, so they run one at a time.

function(dgqa_layering_probe layer header expectation)
  string(MAKE_C_IDENTIFIER "${layer}_includes_${header}" probe)
  set(source ${CMAKE_CURRENT_BINARY_DIR}/layering/${probe}.cc)
  file(GENERATE OUTPUT ${source} CONTENT "#include \"${header}\"\n")
  add_library(layering_${probe} OBJECT EXCLUDE_FROM_ALL ${source})
  target_link_libraries(layering_${probe} PRIVATE dgqa_${layer})
  add_test(NAME layering_${probe}
    COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target layering_${probe})
  set_tests_properties(layering_${probe} PROPERTIES LABELS layering RESOURCE_LOCK build_directory
    TIMEOUT 120)
  if(expectation STREQUAL "REFUSED")
    set_tests_properties(layering_${probe} PROPERTIES
      PASS_REGULAR_EXPRESSION "${header}: No such file or directory")
  endif()
endfunction()

# Upward and sideways includes, one or two per folder.
dgqa_layering_probe(common kernels/backend.h REFUSED)
dgqa_layering_probe(kernels model/vit.h REFUSED)
dgqa_layering_probe(model comm/communicator.h REFUSED)
dgqa_layering_probe(model trainer/config.h REFUSED)
dgqa_layering_probe(comm model/reducer.h REFUSED)
dgqa_layering_probe(data kernels/backend.h REFUSED)
dgqa_layering_probe(data model/model_config.h REFUSED)
dgqa_layering_probe(io comm/communicator.h REFUSED)
dgqa_layering_probe(io trainer/config.h REFUSED)
dgqa_layering_probe(trainer cli/command_line.h REFUSED)
# io's generated protobuf header is private to io (io/event_file.h shows no protobuf type).
dgqa_layering_probe(trainer io/tensorboard_event.pb.h REFUSED)
# Controls: downward includes compile.
dgqa_layering_probe(model kernels/backend.h ALLOWED)
dgqa_layering_probe(io model/vit.h ALLOWED)
dgqa_layering_probe(trainer trainer/config.h ALLOWED)
dgqa_layering_probe(cli trainer/training_step.h ALLOWED)

# A relative include ("../trainer/config.h") would step around the views: there is none.
add_test(NAME layering_no_relative_includes
  COMMAND sh -c "grep -rnE '#include \"[.][.]/' common kernels model comm data io trainer cli tests; test $? -eq 1"
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(layering_no_relative_includes PROPERTIES LABELS layering)
