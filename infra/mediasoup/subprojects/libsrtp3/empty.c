/* Empty translation unit: stand-in for a vendored static library that the
 * mediasoup worker links whole. The real library is the Debian one, linked
 * through the matching *_dep dependency. */
int geo_sfu_mediasoup_overlay_stub_libsrtp3(void);
int geo_sfu_mediasoup_overlay_stub_libsrtp3(void) { return 0; }
