/** Values the global setup provides to every integration suite (via vitest's inject). */
import type {} from "vitest";
declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
    natsUrl: string;
    servicesDir: string;
  }
}
export {};
