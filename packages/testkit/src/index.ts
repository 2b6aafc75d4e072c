import "./provided-context.ts";
export { freshDatabase, type TestDatabase } from "./database.ts";
