# Sourced by side_by_side.sh and interleaved.sh: the size each method runs at, from SIZE,
# LARGE_SIZE and SMIS_SIZE.
size_of() {  # method -> the size it runs at
  # VASIS's reflect padding needs a latent map of at least 2x2 (64x128 gives 1x2); SMIS only
  # runs at its native Cityscapes size (at 128x256 its encoder's latent and G's disagree).
  case "$1" in
    va-spade|va-clade|va-oasis) [ "$SIZE" = 64x128 ] && { echo "$LARGE_SIZE"; return; } ;;
    groupdnet) echo "$SMIS_SIZE"; return ;;
  esac
  echo "$SIZE"
}
