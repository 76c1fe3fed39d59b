import fp from 'fastify-plugin';
import { dashboardRoutes } from '../routes/dashboard.ts';

/** The operator dashboard: its pages and the GET /events stream (which ends its streams in preClose). */
export const dashboardPlugin = fp(async (app) => app.register(dashboardRoutes), { name: 'dashboard', dependencies: ['registry', 'operations'] });
