/**
 * Test-only entry (ui/mock.html): installs the browser mock of the Tauri shell, then starts the
 * real page. Built into ui/dist-mock by `vite build --mode mock`, never into ui/dist.
 */
import { installMockBackend } from "./backend";

installMockBackend();
void import("../main");
