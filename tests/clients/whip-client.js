// The WHIP client the browser test pushes to robocast with: medooze's whip-whep,
// unmodified, exposed as window.WHIPClient so a plain page can use it. setup.sh bundles this file.
import { WHIPClient } from "whip-whep/whip.js";

window.WHIPClient = WHIPClient;
