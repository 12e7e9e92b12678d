# Run by `cmake --install` (install(SCRIPT) in CMakeLists.txt): writes the systemd units from
# contrib/systemd/*.in once the prefix is known, so that ExecStart= and Documentation= name where
# this install puts the program and the guides, whatever --prefix says. Expects
# MBSEC_UNIT_TEMPLATES, MBSEC_UNIT_OUTPUT_DIR, MBSEC_INSTALL_BINDIR and MBSEC_INSTALL_DOCDIR (each
# relative to the prefix, or absolute).
foreach(name bindir docdir)
  string(TOUPPER "${name}" upper)
  set(${name} "${MBSEC_INSTALL_${upper}}")
  if(NOT IS_ABSOLUTE "${${name}}")
    set(${name} "${CMAKE_INSTALL_PREFIX}/${${name}}")
  endif()
endforeach()
foreach(template IN LISTS MBSEC_UNIT_TEMPLATES)
  get_filename_component(unit "${template}" NAME)
  string(REGEX REPLACE "\\.in$" "" unit "${unit}")
  configure_file("${template}" "${MBSEC_UNIT_OUTPUT_DIR}/${unit}" @ONLY)
endforeach()
