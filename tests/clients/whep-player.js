// The WHEP player the browser test plays robocast with: medooze's whip-whep, unmodified,
// exposed as window.WHEPClient so a plain page can use it. setup.sh bundles this file.
import { WHEPClient } from "whip-whep/whep.js";

window.WHEPClient = WHEPClient;
